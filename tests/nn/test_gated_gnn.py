import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.errors import GhnlibError
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.nn import GatedGNN, SweepSchedule
from ghnlib.nn.reference_gated_gnn import reference_gated_gnn
from random_graphs import random_dag

HIDDEN = 16


def make_gnn(dtype=torch.float32, seed=0, **kwargs):
    torch.manual_seed(seed)
    gnn = GatedGNN(HIDDEN, **kwargs).to(dtype)
    # Non-trivial LayerNorm weights, so that a wrong order shows.
    if gnn.norm is not None:
        with torch.no_grad():
            gnn.norm.weight.uniform_(0.5, 1.5)
            gnn.norm.bias.uniform_(-0.5, 0.5)
    return gnn


def states(graph, dtype=torch.float32, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(graph.num_nodes, HIDDEN, generator=generator).to(dtype)


@pytest.fixture(params=['levels', 'compiled'])
def sweep_path(request, monkeypatch):
    """Runs a test on the level-by-level PyTorch sweep and on the compiled
    op (``ghnlib::gated_gnn_sweep``, used without gradients)."""
    if request.param == 'levels':
        monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
    return request.param


def check_path(gnn, h, sweep_path):
    with torch.no_grad():
        compiled = gnn.uses_compiled_sweep(h)
    assert compiled == (sweep_path == 'compiled' and gnn.aggr == 'add')
    # Gradients always take the PyTorch path.
    assert not gnn.uses_compiled_sweep(h)


def run_both(gnn, graph, h, sweep_path=None):
    if sweep_path is not None:
        check_path(gnn, h, sweep_path)
    schedule = SweepSchedule.from_data(graph)
    with torch.no_grad():
        fast = gnn(h, schedule)
        slow = reference_gated_gnn(gnn, h, graph.edge_index,
                                   graph.virtual_edge_index,
                                   graph.virtual_edge_dist)
    return fast, slow


TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('seed,num_nodes,num_edges,cutoff',
                         [(0, 50, 90, 50), (1, 60, 150, 3), (2, 40, 30, 50),
                          (3, 2, 1, 50)])
def test_matches_reference_on_random_dags(dtype, seed, num_nodes, num_edges,
                                          cutoff, sweep_path):
    graph = random_dag(num_nodes, num_edges, seed, cutoff)
    gnn = make_gnn(dtype, seed)
    h = states(graph, dtype, seed)
    fast, slow = run_both(gnn, graph, h, sweep_path)
    assert fast.dtype == dtype and fast.shape == h.shape
    assert not torch.allclose(fast, h)
    torch.testing.assert_close(fast, slow, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('name', ['resnet20_graph', 'mobilenet_graph'])
def test_matches_reference_on_real_graphs(request, name, dtype, sweep_path):
    graph = request.getfixturevalue(name)
    assert graph.virtual_edge_index.size(1) > 1000
    gnn = make_gnn(dtype)
    h = states(graph, dtype)
    fast, slow = run_both(gnn, graph, h, sweep_path)
    torch.testing.assert_close(fast, slow, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize('kwargs', [dict(num_rounds=2),
                                    dict(layer_norm=True),
                                    dict(num_rounds=2, layer_norm=True),
                                    dict(aggr='mean'), dict(aggr='max')])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_rounds_layer_norm_and_aggr_match_reference(resnet20_graph, kwargs,
                                                    dtype, sweep_path):
    for graph in (resnet20_graph, random_dag(50, 100, 7)):
        gnn = make_gnn(dtype, **kwargs)
        h = states(graph, dtype)
        fast, slow = run_both(gnn, graph, h, sweep_path)
        torch.testing.assert_close(fast, slow, atol=TOL[dtype], rtol=0)
    # A second round changes the result, so rounds are really run.
    one = make_gnn(dtype, **{**kwargs, 'num_rounds': 1})
    if kwargs.get('num_rounds', 1) == 2:
        assert not torch.allclose(one(h, SweepSchedule.from_data(graph)),
                                  fast)


def test_batch_equals_per_graph(resnet20_graph, mobilenet_graph,
                                small_cnn_graph, sweep_path):
    graphs = [resnet20_graph, mobilenet_graph, small_cnn_graph]
    batch = Batch.from_data_list(graphs)
    gnn = make_gnn(torch.float64, num_rounds=2, layer_norm=True)
    h = states(batch, torch.float64)
    check_path(gnn, h, sweep_path)
    schedule = SweepSchedule.from_data(batch)
    assert schedule.num_nodes == batch.num_nodes
    # Levels of the graphs are merged: as many as the deepest graph has.
    assert len(schedule.forward) == max(
        len(SweepSchedule.from_data(g).forward) for g in graphs)
    with torch.no_grad():
        batched = gnn(h, schedule)
        per_graph = torch.cat([
            gnn(h[batch.ptr[i]:batch.ptr[i + 1]], SweepSchedule.from_data(g))
            for i, g in enumerate(graphs)
        ])
        slow = reference_gated_gnn(gnn, h, batch.edge_index,
                                   batch.virtual_edge_index,
                                   batch.virtual_edge_dist)
    torch.testing.assert_close(batched, per_graph, atol=1e-10, rtol=0)
    torch.testing.assert_close(batched, slow, atol=1e-10, rtol=0)


def test_batch_of_random_dags_in_float32(sweep_path):
    graphs = [random_dag(n, e, seed) for seed, (n, e) in
              enumerate([(30, 40), (70, 160), (12, 0), (45, 20)])]
    batch = Batch.from_data_list(graphs)
    gnn = make_gnn(torch.float32)
    h = states(batch)
    batched, slow = run_both(gnn, batch, h, sweep_path)
    torch.testing.assert_close(batched, slow, atol=1e-5, rtol=0)
    with torch.no_grad():
        per_graph = torch.cat([
            gnn(h[batch.ptr[i]:batch.ptr[i + 1]], SweepSchedule.from_data(g))
            for i, g in enumerate(graphs)
        ])
    torch.testing.assert_close(batched, per_graph, atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter_and_the_input(resnet20_graph):
    graph = resnet20_graph
    gnn = make_gnn(torch.float64, num_rounds=2, layer_norm=True)
    h = states(graph, torch.float64).requires_grad_()
    target = torch.randn(graph.num_nodes, HIDDEN, dtype=torch.float64)
    out = gnn(h, SweepSchedule.from_data(graph))
    (out * target).sum().backward()
    grads = {name: p.grad.clone() for name, p in gnn.named_parameters()}
    grad_h = h.grad.clone()
    assert set(grads) == {
        'mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias',
        'mlp_ve.0.weight', 'mlp_ve.0.bias', 'mlp_ve.2.weight',
        'mlp_ve.2.bias', 'gru.weight_ih', 'gru.weight_hh', 'gru.bias_ih',
        'gru.bias_hh', 'norm.weight', 'norm.bias'
    }
    for name, grad in grads.items():
        assert grad is not None and grad.abs().sum() > 0, name
    assert grad_h.abs().sum() > 0
    # Every node's input state influences the output.
    assert (grad_h.abs().sum(1) > 0).all()

    # The in-place level updates give the same gradients as the reference.
    gnn.zero_grad()
    h.grad = None
    slow = reference_gated_gnn(gnn, h, graph.edge_index,
                               graph.virtual_edge_index,
                               graph.virtual_edge_dist)
    (slow * target).sum().backward()
    torch.testing.assert_close(h.grad, grad_h, atol=1e-10, rtol=0)
    for name, p in gnn.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], atol=1e-9, rtol=0)


def test_input_is_not_modified():
    graph = random_dag(30, 50, 0)
    gnn = make_gnn()
    h = states(graph)
    before = h.clone()
    gnn(h, SweepSchedule.from_data(graph))
    assert torch.equal(h, before)


def test_gradcheck_small_graph():
    graph = random_dag(8, 12, 3, cutoff=4)
    schedule = SweepSchedule.from_data(graph)
    gnn = GatedGNN(3, layer_norm=True).double()
    h = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: gnn(x, schedule), (h, ))


def test_nodes_without_in_edges_are_updated_once_per_sweep():
    # Node 0: forward source; node 4: isolated; node 5: backward source
    # only (a sink of the forward graph).
    edge_index = torch.tensor([[0, 1, 2, 0], [1, 2, 5, 3]])
    graph = ArchGraph(edge_index=edge_index, num_nodes=6,
                      virtual_edge_index=torch.tensor([[0, 1], [2, 5]]),
                      virtual_edge_dist=torch.tensor([2, 2]))
    schedule = SweepSchedule.from_data(graph)
    for num_rounds in (1, 2):
        gnn = make_gnn(torch.float64, num_rounds=num_rounds)
        h = states(graph, torch.float64)
        fast, slow = run_both(gnn, graph, h)
        torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)
        # The isolated node sees m = 0 twice per round, and nothing else.
        expected = h[4:5]
        with torch.no_grad():
            for _ in range(2 * num_rounds):
                expected = gnn.gru(torch.zeros_like(expected), expected)
        torch.testing.assert_close(fast[4:5], expected, atol=1e-12, rtol=0)
    # After the forward sweep alone, forward sources are GRU(0, h): updated
    # exactly once.
    gnn = make_gnn(torch.float64)
    h = states(graph, torch.float64)
    with torch.no_grad():
        after_forward = gnn._sweep(h, schedule.forward)
        once = gnn.gru(torch.zeros(2, HIDDEN, dtype=torch.float64), h[[0, 4]])
    torch.testing.assert_close(after_forward[[0, 4]], once, atol=1e-12,
                               rtol=0)
    assert schedule.forward.levels[0].msg_index.size(1) == 0
    assert schedule.backward.levels[0].nodes.tolist() == [3, 4, 5]


def test_graph_without_edges():
    graph = ArchGraph(edge_index=torch.empty(2, 0, dtype=torch.long),
                      virtual_edge_index=torch.empty(2, 0, dtype=torch.long),
                      virtual_edge_dist=torch.empty(0, dtype=torch.long),
                      num_nodes=5)
    schedule = SweepSchedule.from_data(graph)
    assert schedule.num_levels == (1, 1)
    gnn = make_gnn()
    h = states(graph)
    fast, slow = run_both(gnn, graph, h)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=0)


def test_from_graph_without_virtual_edges_and_num_nodes():
    edge_index = torch.tensor([[0, 1, 1], [1, 2, 3]])
    schedule = SweepSchedule.from_graph(edge_index)
    assert schedule.num_nodes == 4
    assert schedule.forward.level.tolist() == [0, 1, 2, 2]
    assert schedule.backward.level.tolist() == [2, 1, 0, 0]
    gnn = make_gnn()
    h = torch.randn(4, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(gnn(h, schedule),
                                   reference_gated_gnn(gnn, h, edge_index),
                                   atol=1e-6, rtol=0)


def test_invalid_inputs_raise():
    with pytest.raises(GhnlibError, match='num_rounds'):
        GatedGNN(HIDDEN, num_rounds=0)
    gnn = make_gnn()
    schedule = SweepSchedule.from_graph(torch.tensor([[0], [1]]))
    with pytest.raises(GhnlibError, match='rows'):
        gnn(torch.randn(3, HIDDEN), schedule)


def test_forward_accepts_data_and_schedule_moves(resnet20_graph):
    gnn = make_gnn()
    h = states(resnet20_graph)
    schedule = SweepSchedule.from_data(resnet20_graph)
    moved = schedule.to('cpu')
    with torch.no_grad():
        torch.testing.assert_close(gnn(h, resnet20_graph), gnn(h, moved),
                                   atol=0, rtol=0)
    assert moved.forward.levels[3].msg_index.dtype == torch.long


def test_repr_and_reset_parameters():
    assert repr(GatedGNN(32)) == 'GatedGNN(32, num_rounds=1)'
    assert repr(GatedGNN(8, num_rounds=2, layer_norm=True)) == \
        'GatedGNN(8, num_rounds=2, layer_norm=True)'
    gnn = GatedGNN(8)
    before = [p.clone() for p in gnn.parameters()]
    gnn.reset_parameters()
    assert all(not torch.equal(a, b)
               for a, b in zip(before, gnn.parameters()) if a.numel() > 1)
