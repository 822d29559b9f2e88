import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ghnlib.errors import GhnlibError
from ghnlib.experiments.generalisation import (evaluate_generalisation,
                                               summarise)
from ghnlib.init import initialize
from ghnlib.train import SGDRecipe, evaluate, train_network


def separable_data(n, seed):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.randn(n, 1, 4, 4, generator=generator) * 0.1
    images[:, 0, 0, 0] += labels.float() * 2 - 1
    return TensorDataset(images, labels)


class Tiny(nn.Module):
    def __init__(self, norm):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
        self.norm = nn.BatchNorm2d(4) if norm else nn.Identity()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.norm(self.conv(x))).mean((2, 3)))


def perfect(model, generator):
    """Reads the one informative pixel: a known-good initialisation."""
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.conv.weight[0, 0] = 1
        model.conv.weight[1, 0] = -1
        model.fc.weight[1, 0] = model.fc.weight[0, 1] = 1
        if isinstance(model.norm, nn.BatchNorm2d):
            model.norm.weight.fill_(1)
    return model


def zero_head(model, generator):
    perfect(model, generator)
    with torch.no_grad():
        model.fc.weight.zero_()
    return model


def he(model, generator):
    return initialize(model, 'he', generator=generator)


def test_rows_measure_each_architecture_under_each_init():
    train, test = separable_data(64, 0), separable_data(64, 1)
    archs = [('bn', 'tiny-bn', lambda: Tiny(True)),
             ('bn_free', 'tiny', lambda: Tiny(False))]
    inits = {'perfect': (perfect, False),
             'zeros': (zero_head, False),
             'he': (he, True)}
    results = evaluate_generalisation(archs, inits, train, test,
                                      fine_tune=False)
    assert [(r.split, r.init) for r in results] == [
        (s, i) for s in ('bn', 'bn_free') for i in inits]
    by = {(r.arch, r.init): r for r in results}
    assert by['tiny', 'perfect'].accuracy_at_init == 1.0
    assert by['tiny', 'zeros'].accuracy_at_init == 0.5  # constant logits
    assert all(r.accuracy_fine_tuned is None for r in results)
    assert by['tiny', 'he'].params == 4 * 1 + 4 + 4 * 2 + 2
    rows = {(r['split'], r['init']): r for r in summarise(results, 0.75)}
    assert rows['bn_free', 'perfect']['above_threshold'] == 1.0
    assert rows['bn_free', 'zeros']['above_threshold'] == 0.0
    assert math.isclose(rows['bn', 'perfect']['median_at_init'], 1.0)


def test_fine_tuning_is_the_plain_trainer_from_the_initialisation():
    train, test = separable_data(256, 0), separable_data(128, 1)
    archs = [('s', 'tiny', lambda: Tiny(False))]
    recipe = SGDRecipe(lr=0.5, momentum=0.9, weight_decay=0, batch_size=32,
                       epochs=2, milestones=(), factors=())
    result, = evaluate_generalisation(archs, {'he': (he, False)}, train,
                                      test, recipe=recipe, seed=3)
    torch.manual_seed(3)
    model = he(Tiny(False), torch.Generator().manual_seed(3))
    train_network(model, train, test, recipe=recipe, seed=3, progress=False)
    assert result.accuracy_fine_tuned == evaluate(model, test).accuracy
    assert result.accuracy_fine_tuned != result.accuracy_at_init


def test_nothing_to_evaluate_is_refused():
    with pytest.raises(GhnlibError, match='at least one'):
        evaluate_generalisation([], {'he': (None, False)}, None, None)


def test_diverged_runs_are_counted_not_averaged():
    from ghnlib.experiments.generalisation import GeneralisationResult
    rows = summarise([GeneralisationResult('s', 'a', 'he', 0.5, 0.8, 1, 0.0),
                      GeneralisationResult('s', 'b', 'he', 0.1, float('nan'),
                                           1, 0.0)])
    assert rows[0]['mean_fine_tuned'] == 0.8 and rows[0]['diverged'] == 1
