import math

import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import layerwise_mse, nt_xent


def test_layerwise_mse_equals_its_formula_on_a_hand_made_case():
    # Two networks; layer 0 has two neurons of two weights, layer 1 one
    # neuron of three weights; the padding entry (token 0/1, column 2) is
    # masked and must not count.
    target = torch.tensor([[[1., 2., 9.], [3., 4., 9.], [1., 0., 2.]],
                           [[0., 0., 9.], [1., 1., 9.], [2., 2., 2.]]])
    prediction = torch.tensor([[[1., 3., 0.], [3., 2., 0.], [0., 0., 2.]],
                               [[1., 0., 0.], [1., 1., 0.], [2., 2., 5.]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    layer_index = torch.tensor([0, 0, 1])
    variance = torch.tensor([2.0, 0.5])
    # Network 1: layer 0 error 1 + 4 = 5, over 2; layer 1 error 1, over 0.5.
    # Network 2: layer 0 error 1, over 2; layer 1 error 9, over 0.5.
    # N = 7 weights per network, M = 2 networks.
    expected = (5 / 2 + 1 / 0.5 + 1 / 2 + 9 / 0.5) / (2 * 7)
    loss = layerwise_mse(prediction, target, mask, layer_index, variance)
    assert loss.item() == pytest.approx(expected)


def test_layerwise_mse_weighs_layers_by_their_scale():
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(3, 4, 5, generator=generator)
    prediction = target + torch.randn(3, 4, 5, generator=generator)
    mask = torch.ones(4, 5, dtype=torch.bool)
    layer_index = torch.tensor([0, 0, 1, 1])
    variance = torch.tensor([1.0, 1.0])
    base = layerwise_mse(prediction, target, mask, layer_index, variance)
    assert base.item() == pytest.approx(
        (prediction - target).pow(2).mean().item())
    # Scaling layer 1 by 10 and its variance by 100 changes nothing.
    scale = torch.tensor([1., 1., 10., 10.]).view(1, 4, 1)
    scaled = layerwise_mse(prediction * scale, target * scale, mask,
                           layer_index, torch.tensor([1.0, 100.0]))
    assert scaled.item() == pytest.approx(base.item())
    with pytest.raises(GhnlibError, match='positive'):
        layerwise_mse(prediction, target, mask, layer_index,
                      torch.tensor([1.0, 0.0]))
    with pytest.raises(GhnlibError, match='one per token'):
        layerwise_mse(prediction, target, mask, layer_index[:3], variance)


def test_nt_xent_equals_its_formula():
    first = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    second = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    tau = 0.5
    views = [v / v.norm() for v in torch.cat([first, second])]
    total = 0.0
    for k in range(4):
        positive = (k + 2) % 4
        similarities = {j: float(views[k] @ views[j]) / tau
                        for j in range(4) if j != k}
        total -= similarities[positive] - math.log(
            sum(math.exp(s) for s in similarities.values()))
    assert nt_xent(first, second, tau).item() == pytest.approx(total / 4)
    # Matching views attract: swapping the partners raises the loss.
    assert nt_xent(first, first, tau) < nt_xent(first, first.flip(0), tau)
    with pytest.raises(GhnlibError, match='M >= 2'):
        nt_xent(first[:1], second[:1])
