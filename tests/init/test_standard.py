import math

import pytest
import torch
import torch.nn as nn
from parameter_checks import assert_differ, assert_same, parameters, seeded

from ghnlib.errors import GhnlibError
from ghnlib.init import SCHEMES, initialize, list_initializers
from ghnlib.models import get_model

NO_ARGUMENT = [name for name in list_initializers()
               if SCHEMES.entry(name).metadata['argument'] is None]


class WithBiases(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.up = nn.ConvTranspose2d(8, 4, 2)
        self.norm = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.norm(self.up(self.conv(x))).mean((2, 3)))


def test_he_matches_its_variance():
    model = initialize(get_model('resnet20'), 'he', generator=seeded(0))
    weight = model.layer3[1].conv1.weight.detach()  # 64 x 64 x 3 x 3
    assert weight.numel() > 30_000
    fan_in = weight[0].numel()
    assert float(weight.std()) == pytest.approx(math.sqrt(2 / fan_in),
                                                rel=0.1)
    assert float(weight.mean()) == pytest.approx(0, abs=0.01)


def test_xavier_matches_its_variance():
    model = initialize(get_model('resnet20'), 'xavier', generator=seeded(0))
    weight = model.layer3[1].conv1.weight.detach()
    fan_in, fan_out = weight[0].numel(), weight.size(0) * weight[0, 0].numel()
    assert float(weight.std()) == pytest.approx(
        math.sqrt(2 / (fan_in + fan_out)), rel=0.1)


@pytest.mark.parametrize('spec', ['he', 'xavier'])
def test_biases_zero_norms_identity_and_running_stats_reset(spec):
    model = WithBiases()
    for p in model.parameters():
        nn.init.constant_(p, 3.0)
    initialize(model, spec, generator=seeded(0))
    assert not model.conv.bias.any() and not model.up.bias.any()
    assert not model.fc.bias.any() and not model.norm.bias.any()
    assert torch.equal(model.norm.weight, torch.ones(4))
    # Transposed convolutions are drawn too.
    assert model.up.weight.std() < 1

    resnet = get_model('resnet20')
    resnet.bn1.running_mean.fill_(5.0)
    resnet.bn1.weight.data.fill_(2.0)
    initialize(resnet, spec, generator=seeded(0))
    assert not resnet.bn1.running_mean.any()
    assert torch.equal(resnet.bn1.weight, torch.ones(16))


@pytest.mark.parametrize('spec', NO_ARGUMENT)
def test_seed_reproduces_and_different_seeds_differ(spec):
    first = parameters(initialize(WithBiases(), spec, generator=seeded(1)))
    again = parameters(initialize(WithBiases(), spec, generator=seeded(1)))
    other = parameters(initialize(WithBiases(), spec, generator=seeded(2)))
    assert_same(first, again)
    assert_differ(first, other)
    for value in first.values():
        assert torch.isfinite(value).all()


def test_default_leaves_the_global_generator_alone():
    model = get_model('small_cnn')
    state = torch.get_rng_state()
    initialize(model, 'default', generator=seeded(0))
    assert torch.equal(state, torch.get_rng_state())


def test_unknown_modules_with_parameters_are_reported():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), Raw())
    with pytest.raises(GhnlibError, match=r"'1' \(Raw\).*reset_parameters"):
        initialize(model, 'he')


@pytest.mark.parametrize('spec', ['he', 'xavier', 'default'])
def test_multihead_attention_is_initialised(spec):
    model = nn.MultiheadAttention(64, 4, bias=True, add_bias_kv=True)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    initialize(model, spec, generator=seeded(0))
    assert torch.equal(model.in_proj_bias, torch.zeros(192))
    assert torch.equal(model.bias_k, torch.zeros(1, 1, 64))
    expected = {'he': math.sqrt(2 / 64), 'xavier': math.sqrt(2 / (64 + 192)),
                'default': math.sqrt(2 / (64 + 192))}[spec]
    std = float(model.in_proj_weight.detach().std())
    assert std == pytest.approx(expected, rel=0.1)
    assert float(model.out_proj.weight.detach().abs().max()) < 1
