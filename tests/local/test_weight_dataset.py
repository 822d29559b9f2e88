import pytest
import torch
from torch import nn

from ghnlib.errors import GhnlibError
from ghnlib.local.weight_dataset import (build_weight_datasets, conv_layers,
                                         kernel_slices, prune_slices)
from ghnlib.models import get_model


class Renamed(nn.Module):
    """Parameter names that say nothing, in an order unlike data flow."""
    def __init__(self):
        super().__init__()
        self.b = nn.Conv2d(4, 6, 3, padding=1)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.z = nn.Conv2d(6, 5, 1)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        x = self.z(self.b(self.a(x).relu()).relu())
        return self.head(x.mean((2, 3)))


def test_conv_layers_come_from_the_graph_in_data_flow_order():
    layers = conv_layers(Renamed(), (1, 3, 8, 8))
    assert [l.name for l in layers] == ['a.weight', 'b.weight', 'z.weight']
    assert [l.shape for l in layers] == [(4, 3, 3, 3), (6, 4, 3, 3),
                                         (5, 6, 1, 1)]
    resnet = conv_layers(get_model('resnet20'))
    assert len(resnet) == 19 and resnet[0].name == 'conv1.weight'
    assert all(l.kernel_size == (3, 3) for l in resnet)


def test_slices_are_row_major_views_of_the_weight():
    weight = torch.arange(2 * 3 * 3 * 3, dtype=torch.float).view(2, 3, 3, 3)
    slices = kernel_slices(weight)
    assert slices.shape == (6, 3, 3)
    assert torch.equal(slices[4], weight[1, 1])  # (out 1, in 1)
    assert torch.equal(slices.view(weight.shape), weight)


def test_pruning_keeps_exactly_the_top_95_percent_by_norm():
    generator = torch.Generator().manual_seed(0)
    slices = torch.randn(200, 3, 3, generator=generator) * torch.rand(
        200, 1, 1, generator=generator)
    kept = prune_slices(slices, 0.05)
    assert kept.size(0) == 190
    norms = slices.flatten(1).norm(dim=1)
    threshold = norms.sort().values[10]
    assert (kept.flatten(1).norm(dim=1) >= threshold).all()
    # The dropped ones are the 10 smallest, and the order is kept.
    keep_index = (norms >= threshold).nonzero().flatten()
    assert torch.equal(kept, slices[keep_index])
    assert torch.equal(prune_slices(slices, 0.0), slices)
    with pytest.raises(GhnlibError, match='fraction'):
        prune_slices(slices, 1.5)


def test_weight_datasets_over_a_zoo_skip_1x1_layers():
    states = []
    for seed in range(3):
        torch.manual_seed(seed)
        states.append(Renamed().state_dict())
    datasets, skipped = build_weight_datasets(states, Renamed(),
                                              input_shape=(1, 3, 8, 8))
    assert list(datasets) == ['a.weight', 'b.weight']
    assert list(skipped) == ['z.weight'] and '1×1' in skipped['z.weight']
    a = datasets['a.weight']
    total = 3 * 4 * 3
    assert a.members == 3 and a.dropped == total // 20
    assert a.slices.shape == (total - total // 20, 3, 3)
    pooled = torch.cat([kernel_slices(s['a.weight']) for s in states])
    assert torch.equal(a.slices, prune_slices(pooled, 0.05))
    with pytest.raises(GhnlibError, match='another architecture'):
        build_weight_datasets([{'a.weight': states[0]['a.weight']}],
                              Renamed(), input_shape=(1, 3, 8, 8))
