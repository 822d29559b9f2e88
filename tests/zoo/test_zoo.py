import json

import pytest
import torch

from ghnlib.data import load_digits
from ghnlib.errors import GhnlibError
from ghnlib.train import SGDRecipe, evaluate
from ghnlib.zoo import build_zoo, load_zoo
from ghnlib.zoo import zoo as zoo_module

RECIPE = SGDRecipe(lr=0.05, batch_size=64, epochs=1, milestones=(),
                   factors=())


@pytest.fixture(scope='module')
def digits():
    return (load_digits(image_size=8, channels=3, split='train'),
            load_digits(image_size=8, channels=3, split='val'))


def test_zoo_keeps_best_weights_and_resumes(digits, tmp_path, monkeypatch):
    train, val = digits
    calls = []
    real = zoo_module.train_network

    def counting(model, *args, seed, **kwargs):
        calls.append(seed)
        if seed == 2 and len(calls) == 2:
            raise KeyboardInterrupt  # the run stops during the second member
        return real(model, *args, seed=seed, **kwargs)

    monkeypatch.setattr(zoo_module, 'train_network', counting)
    with pytest.raises(KeyboardInterrupt):
        build_zoo('resnet20', train, val, tmp_path, seeds=[1, 2, 3],
                  recipe=RECIPE, max_steps=6, eval_every=3, dataset='digits',
                  progress=False)
    assert [m.seed for m in load_zoo(tmp_path)] == [1]
    members = build_zoo('resnet20', train, val, tmp_path, seeds=[1, 2, 3],
                        recipe=RECIPE, max_steps=6, eval_every=3,
                        dataset='digits', progress=False)
    assert calls == [1, 2, 2, 3]  # member 1 was not trained again
    assert [m.seed for m in members] == [1, 2, 3]
    for member in members:
        assert member.arch == 'resnet20' and member.dataset == 'digits'
        # The stored weights are the best-validation ones: evaluating them
        # gives the recorded accuracy.
        model = member.model()
        assert evaluate(model, val).accuracy == pytest.approx(
            member.val_accuracy)
    a, b = (m.state_dict()['conv1.weight'] for m in members[:2])
    assert not torch.equal(a, b)
    index = json.loads((tmp_path / 'zoo.json').read_text())
    assert [entry['seed'] for entry in index] == [1, 2, 3]


def test_zoo_refuses_foreign_or_corrupt_members(digits, tmp_path):
    train, val = digits
    build_zoo('resnet20', train, val, tmp_path, seeds=[0], recipe=RECIPE,
              max_steps=2, progress=False)
    with pytest.raises(GhnlibError, match='resnet20'):
        load_zoo(tmp_path, arch='resnet32')
    with pytest.raises(GhnlibError, match='another folder'):
        build_zoo('resnet32', train, val, tmp_path, seeds=[0], recipe=RECIPE,
                  max_steps=2, progress=False)
    (tmp_path / 'member_00007.safetensors').write_bytes(b'\x00' * 10)
    with pytest.raises(GhnlibError, match='member_00007'):
        load_zoo(tmp_path)
    with pytest.raises(GhnlibError, match='no model zoo'):
        load_zoo(tmp_path / 'missing')


def test_zoo_keeps_every_epoch_and_test_accuracy(digits, tmp_path):
    train, val = digits
    test = load_digits(image_size=8, channels=3, split='test')
    recipe = RECIPE.replace(epochs=2, batch_size=256)  # 5 steps per epoch
    members = build_zoo('resnet20', train, val, tmp_path, seeds=[4],
                        recipe=recipe, test_set=test, keep_epochs=True,
                        progress=False)
    member = members[0]
    assert member.input_shape == (1, 3, 8, 8) and member.has_checkpoints
    checkpoints = member.checkpoints()
    assert [c.step for c in checkpoints] == [0, 5, 10]
    assert [c.epoch for c in checkpoints] == [0.0, 1.0, 2.0]
    for checkpoint in checkpoints:
        model = member.model()
        model.load_state_dict(checkpoint.state)
        assert evaluate(model, val).accuracy == pytest.approx(
            checkpoint.val_accuracy)
        assert evaluate(model, test).accuracy == pytest.approx(
            checkpoint.test_accuracy)
    best = next(c for c in checkpoints if c.step == member.best_step)
    assert member.test_accuracy == pytest.approx(best.test_accuracy)
    assert all(torch.equal(best.state[k], v)
               for k, v in member.state_dict().items())
    # A member kept without its checkpoints is trained again when they are
    # asked for; a damaged checkpoints file is refused by name.
    plain = build_zoo('resnet20', train, val, tmp_path / 'plain', seeds=[4],
                      recipe=recipe, progress=False)[0]
    assert not plain.has_checkpoints and plain.test_accuracy is None
    with pytest.raises(GhnlibError, match='keep_epochs'):
        plain.checkpoints()
    again = build_zoo('resnet20', train, val, tmp_path / 'plain', seeds=[4],
                      recipe=recipe, keep_epochs=True, progress=False)[0]
    assert again.has_checkpoints and len(again.checkpoints()) == 3
    (tmp_path / 'checkpoints' / 'member_00004.safetensors').write_bytes(
        b'garbage')
    with pytest.raises(GhnlibError, match='checkpoints/member_00004'):
        member.checkpoints()
