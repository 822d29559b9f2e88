import math
import os

import pytest
import torch
import torch.nn as nn

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.models import get_model
from ghnlib.train import initializers
from ghnlib.train.initializers import (get_initializer, initialize,
                                       list_initializers, register_initializer)

NO_ARGUMENT = [name for name in list_initializers()
               if initializers._SCHEMES[name].argument is None]


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def parameters(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def assert_differ(a, b):
    weights = [name for name in a if a[name].dim() > 1]
    assert weights and all(not torch.equal(a[n], b[n]) for n in weights)


def save_ghn(path, noise_dim):
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                            noise_dim=noise_dim)
    ghn.save(path)
    return ghn


class WithBiases(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.up = nn.ConvTranspose2d(8, 4, 2)
        self.norm = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.norm(self.up(self.conv(x))).mean((2, 3)))


def test_registry_lists_the_builtin_schemes():
    assert {'he', 'xavier', 'default', 'ghn', 'noise-ghn'} <= set(
        list_initializers())
    assert list_initializers() == sorted(list_initializers())
    assert repr(get_initializer('he')) == "Initializer('he')"


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


def test_ghn_writes_the_prediction_deterministically(tmp_path):
    path = tmp_path / 'ghn.safetensors'
    ghn = save_ghn(path, noise_dim=0)
    spec = f'ghn:{path}'
    first = parameters(initialize(get_model('resnet20'), spec,
                                  generator=seeded(0)))
    again = parameters(initialize(get_model('resnet20'), spec,
                                  generator=seeded(1)))
    assert_same(first, again)
    with torch.no_grad():
        expected = ghn.predict([get_model('resnet20')])[0]
    for name, value in expected.items():
        torch.testing.assert_close(first[name], value)


def test_ghn_uses_a_noise_ghn_with_zero_noise(tmp_path):
    path = tmp_path / 'noise.safetensors'
    ghn = save_ghn(path, noise_dim=8)
    model = initialize(get_model('resnet20'), f'ghn:{path}',
                       generator=seeded(3))
    with torch.no_grad():
        expected = ghn.predict([get_model('resnet20')],
                               noise=torch.zeros(8))[0]
    torch.testing.assert_close(model.fc.weight, expected['fc.weight'])


def test_noise_ghn_samples_from_the_generator(tmp_path):
    path = tmp_path / 'noise.safetensors'
    save_ghn(path, noise_dim=8)
    init = get_initializer(f'noise-ghn:{path}')
    first = parameters(init(get_model('resnet20'), seeded(0)))
    again = parameters(init(get_model('resnet20'), seeded(0)))
    other = parameters(init(get_model('resnet20'), seeded(1)))
    assert_same(first, again)
    assert_differ(first, other)


def test_noise_ghn_refuses_a_deterministic_ghn(tmp_path):
    path = tmp_path / 'ghn.safetensors'
    save_ghn(path, noise_dim=0)
    with pytest.raises(GhnlibError, match=f"noise_dim=0.*'ghn:{path}'"):
        get_initializer(f'noise-ghn:{path}')


def test_ghn_checkpoints_are_cached_per_file_version(tmp_path, monkeypatch):
    path = tmp_path / 'ghn.safetensors'
    save_ghn(path, noise_dim=0)
    loads = []
    load = GraphHyperNetwork.load
    monkeypatch.setattr(GraphHyperNetwork, 'load',
                        lambda p: loads.append(p) or load(p))
    for _ in range(3):
        get_initializer(f'ghn:{path}')
    assert len(loads) == 1
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    get_initializer(f'ghn:{path}')
    assert len(loads) == 2


def test_missing_ghn_file(tmp_path):
    with pytest.raises(GhnlibError, match='no GHN checkpoint at'):
        initialize(get_model('resnet20'), f'ghn:{tmp_path}/missing.pt')


def test_unknown_spec_names_the_known_schemes():
    with pytest.raises(GhnlibError) as info:
        get_initializer('hee')
    message = str(info.value)
    assert "'hee'" in message and "Did you mean 'he'" in message
    for usage in ('default', 'ghn:PATH', 'noise-ghn:PATH', 'xavier'):
        assert usage in message


def test_arguments_missing_or_unexpected():
    with pytest.raises(GhnlibError, match="needs an argument.*'ghn:PATH'"):
        get_initializer('ghn')
    with pytest.raises(GhnlibError, match="needs an argument"):
        get_initializer('noise-ghn:')
    with pytest.raises(GhnlibError, match="takes no argument.*use 'he'"):
        get_initializer('he:fan_out')
    with pytest.raises(GhnlibError, match='must be a string'):
        get_initializer(None)
    with pytest.raises(GhnlibError, match='torch.Generator'):
        initialize(WithBiases(), 'he', generator=0)


def test_register_a_scheme_with_an_argument():
    calls = []

    @register_initializer('test-constant', argument='VALUE')
    def constant(value):
        def init(model, generator, *, input_shape):
            calls.append(input_shape)
            for p in model.parameters():
                nn.init.constant_(p, float(value))
            return model
        return init

    try:
        model = initialize(nn.Linear(2, 2), 'test-constant:0.5',
                           input_shape=(1, 2))
        assert torch.equal(model.weight, torch.full((2, 2), 0.5))
        assert calls == [(1, 2)]
        assert 'test-constant' in list_initializers()
        with pytest.raises(ValueError, match='already registered'):
            register_initializer('test-constant')(constant)
    finally:
        del initializers._SCHEMES['test-constant']


def test_register_rejects_duplicates_and_bad_names():
    with pytest.raises(ValueError, match="'he' is already registered"):
        register_initializer('he')(lambda model, generator, **_: model)
    with pytest.raises(ValueError, match="no ':'"):
        register_initializer('a:b')
