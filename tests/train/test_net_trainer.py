import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ghnlib.errors import GhnlibError
from ghnlib.models import get_model
from ghnlib.train.evaluation import evaluate
from ghnlib.init import initialize
from ghnlib.train.net_trainer import (SGDRecipe, TrainingHistory,
                                      check_model_accepts, lr_schedule,
                                      train_network)

FAST = SGDRecipe(batch_size=64, lr=0.05)


def digits(size):
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16
    if size != 8:
        images = F.interpolate(images, size=size, mode='bilinear')
    images = images.repeat(1, 3, 1, 1)
    labels = torch.tensor(data.target)
    return (TensorDataset(images[:1400], labels[:1400]),
            TensorDataset(images[1400:], labels[1400:]))


@pytest.fixture(scope='module')
def digits8():
    return digits(8)


def tiny_net(seed=0):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.Dropout(0.2), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(32, 10))
    return initialize(model, 'he', generator=torch.Generator().manual_seed(seed))


def test_training_learns_digits():
    train_set, val_set = digits(16)
    model = initialize(get_model('resnet20'), 'he',
                       generator=torch.Generator().manual_seed(0))
    history = train_network(model, train_set, val_set, recipe=FAST,
                            eval_every=20, max_steps=60, progress=False)
    assert history.steps == [0, 20, 40, 60]
    assert history.val_accuracy[-1] > 0.5
    assert history.val_accuracy[-1] > history.val_accuracy[0] + 0.3
    assert math.isnan(history.train_loss[0])
    assert history.train_loss[-1] < history.train_loss[1]
    # The model keeps its last weights: they are what was evaluated last.
    assert evaluate(model, val_set).accuracy == history.val_accuracy[-1]
    assert history.seconds > 0
    encoded = json.loads(json.dumps(history.to_dict(), allow_nan=False))
    assert 'best_state' not in encoded and encoded['train_loss'][0] is None


def test_evaluation_steps(digits8):
    train_set, val_set = digits8
    history = train_network(tiny_net(), train_set, val_set, recipe=FAST,
                            eval_every=5, max_steps=12, progress=False)
    assert history.steps == [0, 5, 10, 12]
    # Once per epoch by default: 100 items in batches of 32 are 4 steps.
    small = torch.utils.data.Subset(train_set, range(100))
    history = train_network(tiny_net(), small, val_set,
                            recipe=FAST.replace(batch_size=32, epochs=2),
                            progress=False)
    assert history.steps == [0, 4, 8]
    history = train_network(tiny_net(), small, val_set, recipe=FAST,
                            max_steps=0, progress=False)
    assert history.steps == [0]


def test_learning_rate_follows_the_schedule(digits8):
    train_set, val_set = digits8
    recipe = SGDRecipe(batch_size=16, milestones=(3, 5), factors=(0.2, 0.5),
                       milestone_unit='step')
    history = train_network(tiny_net(), train_set, val_set, recipe=recipe,
                            eval_every=1, max_steps=7, progress=False)
    assert history.steps == list(range(8))
    expected = [0.1, 0.1, 0.1, 0.02, 0.02, 0.01, 0.01, 0.01]
    assert history.learning_rate == pytest.approx(expected)


def test_epoch_milestones_become_steps():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = lr_schedule(optimizer, SGDRecipe.cifar10(), steps_per_epoch=3)
    rates = []
    for _ in range(3 * 110):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    assert rates[239] == pytest.approx(0.1)
    assert rates[240] == pytest.approx(0.02)  # epoch 80
    assert rates[299] == pytest.approx(0.02)
    assert rates[300] == pytest.approx(0.01)  # epoch 100


def test_paper_recipes():
    cifar = SGDRecipe.cifar10()
    assert cifar == SGDRecipe()
    assert (cifar.lr, cifar.momentum, cifar.weight_decay, cifar.batch_size,
            cifar.epochs) == (0.1, 0.9, 1e-4, 128, 120)
    pcam = SGDRecipe.pcam()
    assert (pcam.epochs, pcam.milestones, pcam.factors,
            pcam.milestone_unit) == (10, (7200, 8400), (0.2, 0.5), 'step')
    assert pcam.lr_factor(8399, 2048) == pytest.approx(0.2)
    assert SGDRecipe.cifar10(epochs=5).epochs == 5


@pytest.mark.parametrize('kwargs, match', [
    (dict(milestones=(5, 3)), 'strictly increasing'),
    (dict(factors=(0.1, )), 'same length'),
    (dict(milestone_unit='batch'), 'milestone_unit'),
    (dict(lr=0), 'lr must be > 0'),
])
def test_invalid_recipes(kwargs, match):
    with pytest.raises(GhnlibError, match=match):
        SGDRecipe(**kwargs)


def test_seed_reproduces_training(digits8):
    train_set, val_set = digits8

    def run(seed):
        model = tiny_net()
        train_network(model, train_set, val_set, recipe=FAST, max_steps=10,
                      seed=seed, progress=False)
        return model.state_dict()

    first, again, other = run(0), run(0), run(1)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    assert not torch.equal(first['6.weight'], other['6.weight'])


def test_keep_best_loads_the_best_weights(digits8, monkeypatch):
    from ghnlib.train import net_trainer
    train_set, val_set = digits8
    # The accuracy peaks at the second evaluation (step 2), whatever the
    # real trajectory.
    scripted = iter([0.1, 0.9, 0.3, 0.2, 0.4, 0.5])
    real = net_trainer.evaluate

    def scripted_evaluate(*args, **kwargs):
        result = real(*args, **kwargs)
        return result._replace(accuracy=next(scripted))

    monkeypatch.setattr(net_trainer, 'evaluate', scripted_evaluate)
    model = tiny_net()
    history = train_network(model, train_set, val_set, recipe=FAST,
                            eval_every=2, max_steps=10, keep_best=True,
                            progress=False)
    assert history.steps == [0, 2, 4, 6, 8, 10]
    assert history.best_step == 2 and history.best_val_accuracy == 0.9
    for name, value in model.state_dict().items():
        assert torch.equal(value, history.best_state[name]), name

    scripted = iter([0.1, 0.9, 0.3, 0.2, 0.4, 0.5])
    last = tiny_net()
    train_network(last, train_set, val_set, recipe=FAST, eval_every=2,
                  max_steps=10, keep_best=False, progress=False)
    assert any(not torch.equal(value, history.best_state[name])
               for name, value in last.state_dict().items())


def test_jsonl_log(digits8, tmp_path):
    train_set, val_set = digits8
    log = tmp_path / 'logs' / 'run.jsonl'
    history = train_network(tiny_net(), train_set, val_set, recipe=FAST,
                            eval_every=4, max_steps=8, log_path=log,
                            progress=False)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line['step'] for line in lines] == history.steps == [0, 4, 8]
    for line in lines:
        assert set(line) == {'step', 'epoch', 'val_accuracy', 'val_loss',
                             'train_loss', 'lr', 'seconds'}
    assert lines[0]['train_loss'] is None
    assert lines[-1]['val_accuracy'] == history.val_accuracy[-1]
    train_network(tiny_net(), train_set, val_set, recipe=FAST, eval_every=4,
                  max_steps=4, log_path=log, progress=False)
    assert len(log.read_text().splitlines()) == 5  # appended


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float('nan')


def test_non_finite_loss_raises(digits8):
    train_set, val_set = digits8
    with pytest.raises(GhnlibError, match='at step 0.*diverged'):
        train_network(NaNNet(), train_set, val_set, recipe=FAST,
                      max_steps=5, progress=False)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    with pytest.raises(GhnlibError, match=r'at step \d+.*learning rate'):
        train_network(linear, train_set, val_set,
                      recipe=FAST.replace(lr=1e10, momentum=0.0),
                      max_steps=20, progress=False)


def test_invalid_arguments(digits8):
    train_set, val_set = digits8
    with pytest.raises(GhnlibError, match='eval_every'):
        train_network(tiny_net(), train_set, val_set, eval_every=0)
    with pytest.raises(GhnlibError, match='train_set is empty'):
        train_network(tiny_net(), TensorDataset(torch.zeros(0, 3, 8, 8)),
                      val_set)
    with pytest.raises(GhnlibError, match='SGDRecipe'):
        train_network(tiny_net(), train_set, val_set, recipe={'lr': 0.1})


def test_history_defaults():
    history = TrainingHistory()
    assert history.to_dict()['best_val_accuracy'] is None


def test_a_model_that_does_not_fit_the_data_is_refused_before_training():
    from ghnlib.data import load_digits

    train = load_digits(image_size=16, channels=3, split='train')
    val = load_digits(image_size=16, channels=3, split='val')
    small_cnn = get_model('small_cnn')  # 28×28, one channel by default
    before = {k: v.clone() for k, v in small_cnn.state_dict().items()}
    with pytest.raises(GhnlibError, match=r"SmallCNN\) does not accept this "
                       r"dataset's images of shape \(3, 16, 16\).*--channels"):
        train_network(small_cnn, train, val, recipe=FAST, progress=False)
    for key, value in small_cnn.state_dict().items():
        assert torch.equal(value, before[key])
    assert small_cnn.training
    with pytest.raises(GhnlibError, match='dataset has 10 classes: build it '
                       'with num_classes=10'):
        check_model_accepts(get_model('resnet20', num_classes=7), train)
    # The right model passes, and stays in its mode.
    fitting = get_model('resnet20').eval()
    check_model_accepts(fitting, train)
    assert not fitting.training
