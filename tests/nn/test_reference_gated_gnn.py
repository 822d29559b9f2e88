import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.nn import GatedGNN
from ghnlib.nn.reference_gated_gnn import (reference_adjacency,
                                           reference_gated_gnn)
from random_graphs import random_dag

HIDDEN = 8


def make_gnn(**kwargs):
    torch.manual_seed(0)
    return GatedGNN(HIDDEN, **kwargs)


def test_chain_by_hand():
    # 0 -> 1 -> 2 with a virtual edge 0 -> 2 of length 2: the forward sweep
    # updates 0, 1, 2 in turn, the backward sweep 2, 1, 0 over reversed
    # edges.
    gnn = make_gnn()
    h = torch.randn(3, HIDDEN)
    edge_index = torch.tensor([[0, 1], [1, 2]])
    ve_index, ve_dist = torch.tensor([[0], [2]]), torch.tensor([2])
    with torch.no_grad():
        got = reference_gated_gnn(gnn, h, edge_index, ve_index, ve_dist)
        zero = torch.zeros(1, HIDDEN)
        s0 = gnn.gru(zero, h[0:1])
        s1 = gnn.gru(gnn.mlp(s0), h[1:2])
        s2 = gnn.gru(gnn.mlp(s1) + gnn.mlp_ve(s0) / 2, h[2:3])
        b2 = gnn.gru(zero, s2)
        b1 = gnn.gru(gnn.mlp(b2), s1)
        b0 = gnn.gru(gnn.mlp(b1) + gnn.mlp_ve(b2) / 2, s0)
    torch.testing.assert_close(got, torch.cat([b0, b1, b2]), atol=1e-6,
                               rtol=0)


def test_adjacency_lists():
    edge_index = torch.tensor([[0, 0, 1], [1, 2, 2]])
    forward, backward = reference_adjacency(
        edge_index, torch.tensor([[0], [3]]), torch.tensor([3]), 4)
    order, real_in, virtual_in = forward
    assert list(order) == [0, 1, 2, 3]
    assert real_in == [[], [0], [0, 1], []]
    assert virtual_in == [[], [], [], [(0, 3)]]
    order, real_in, virtual_in = backward
    assert list(order) == [3, 2, 1, 0]
    assert real_in == [[1, 2], [2], [], []]
    assert virtual_in == [[(3, 3)], [], [], []]


def test_reference_with_prebuilt_adjacency():
    graph = random_dag(30, 50, 4)
    gnn = make_gnn()
    h = torch.randn(graph.num_nodes, HIDDEN)
    adjacency = reference_adjacency(graph.edge_index,
                                    graph.virtual_edge_index,
                                    graph.virtual_edge_dist, graph.num_nodes)
    with torch.no_grad():
        torch.testing.assert_close(
            reference_gated_gnn(gnn, h, graph.edge_index,
                                graph.virtual_edge_index,
                                graph.virtual_edge_dist, adjacency=adjacency),
            reference_gated_gnn(gnn, h, graph.edge_index,
                                graph.virtual_edge_index,
                                graph.virtual_edge_dist), atol=0, rtol=0)


def test_invalid_inputs_raise():
    gnn = make_gnn()
    # The reference needs ids in topological order.
    with pytest.raises(GhnlibError, match='lower to higher'):
        reference_gated_gnn(gnn, torch.randn(2, HIDDEN),
                            torch.tensor([[1], [0]]))
    with pytest.raises(GhnlibError, match='virtual edges from lower'):
        reference_gated_gnn(gnn, torch.randn(3, HIDDEN),
                            torch.tensor([[0, 1], [1, 2]]),
                            torch.tensor([[2], [0]]), torch.tensor([2]))
    gnn.aggr = 'std'
    with pytest.raises(GhnlibError, match="does not support aggr='std'"):
        reference_gated_gnn(gnn, torch.randn(2, HIDDEN),
                            torch.tensor([[0], [1]]))
