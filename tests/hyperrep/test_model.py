import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import WeightAutoencoder

LAYERS = [0, 0, 0, 1, 1]
POSITIONS = [0, 1, 2, 0, 1]


def test_shapes_and_repr():
    torch.manual_seed(0)
    model = WeightAutoencoder(7, LAYERS, POSITIONS, d_model=16, latent_dim=3,
                              num_heads=2)
    tokens = torch.randn(4, 5, 7)
    reconstruction, latent = model(tokens)
    assert reconstruction.shape == (4, 5, 7) and latent.shape == (4, 5, 3)
    assert torch.equal(model.decode(latent), reconstruction)
    assert model.project(latent).shape == (4, 32)
    assert repr(model) == ('WeightAutoencoder(tokens=5, width=7, d_model=16, '
                           'latent_dim=3)')
    with pytest.raises(GhnlibError, match=r'expected \[B, 5, 7\]'):
        model.encode(torch.randn(4, 6, 7))
    with pytest.raises(GhnlibError, match='divisible'):
        WeightAutoencoder(7, LAYERS, POSITIONS, d_model=10, num_heads=4)


def test_contrastive_embedding_ignores_neuron_order():
    torch.manual_seed(0)
    model = WeightAutoencoder(7, LAYERS, POSITIONS, d_model=16, latent_dim=3,
                              num_heads=2)
    latent = torch.randn(2, 5, 3)
    within_layers = latent[:, [2, 0, 1, 4, 3]]
    assert torch.allclose(model.project(within_layers), model.project(latent),
                          atol=1e-6)
    across_layers = latent[:, [3, 1, 2, 0, 4]]
    assert not torch.allclose(model.project(across_layers),
                              model.project(latent), atol=1e-4)


def test_config_rebuilds_the_same_model():
    torch.manual_seed(0)
    model = WeightAutoencoder(7, LAYERS, POSITIONS, d_model=16, latent_dim=3,
                              num_heads=2)
    copy = WeightAutoencoder(**model.config)
    copy.load_state_dict(model.state_dict())
    tokens = torch.randn(2, 5, 7)
    assert torch.equal(copy(tokens)[0], model(tokens)[0])
