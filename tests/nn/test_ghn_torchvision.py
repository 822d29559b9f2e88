"""A GHN initialises every torchvision classifier (never seen in training):
a tensor of the right shape for every parameter, finite values, and a
forward pass with finite outputs."""
import pytest
import torch

from ghnlib import GraphHyperNetwork
from ghnlib.graph import to_graph
from torchvision_zoo import MODELS, build, input_size

torch.manual_seed(0)
GHN = GraphHyperNetwork(noise_dim=8, max_shape=(64, 64, 11, 11))


@pytest.mark.parametrize('name', MODELS)
def test_initialises_every_classification_model(name):
    model = build(name, meta=False)
    graph = to_graph(model, input_shape=(1, 3, input_size(name),
                                         input_size(name)))
    with torch.no_grad():
        predicted = GHN.predict([graph], generator=torch.Generator().manual_seed(0))[0]
    params = dict(model.named_parameters())
    assert predicted.keys() == params.keys()
    for key, value in predicted.items():
        assert value.shape == params[key].shape, key
        assert torch.isfinite(value).all(), key
    GHN.init_(model, graph=graph)
    size = input_size(name, smallest=True)
    # Training mode, as an initialised model is used next: batch-norm layers
    # normalise with batch statistics (their running ones were reset).
    with torch.no_grad():
        out = model.train()(torch.randn(4, 3, size, size))
    if isinstance(out, tuple):  # auxiliary classifiers in training mode
        out = out[0]
    assert out.shape == (4, 1000)
    assert torch.isfinite(out).all()
