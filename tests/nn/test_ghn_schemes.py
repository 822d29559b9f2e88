import os

import pytest
import torch
from parameter_checks import assert_differ, assert_same, parameters, seeded

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.init import get_initializer, initialize
from ghnlib.models import get_model


def save_ghn(path, noise_dim):
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                            noise_dim=noise_dim)
    ghn.save(path)
    return ghn


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
