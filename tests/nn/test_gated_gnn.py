import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.graph import to_graph
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.draw import node_levels
from ghnlib.models import get_model
from ghnlib.nn.gated_gnn import (GatedGNN, SweepSchedule, reference_adjacency,
                                 reference_gated_gnn)
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


@pytest.fixture(scope='module')
def resnet20_graph():
    return to_graph(get_model('resnet20'))


@pytest.fixture(scope='module')
def mobilenet_graph(torchvision):
    with torch.device('meta'):
        model = torchvision.models.mobilenet_v3_small()
    return to_graph(model, input_shape=(1, 3, 64, 64))


@pytest.fixture(scope='module')
def small_cnn_graph():
    return to_graph(get_model('small_cnn'))


def reversed_levels(graph):
    """node_levels of the reversed graph, relabelled i -> N - 1 - i so that
    its edges go from lower to higher ids again."""
    n = graph.num_nodes
    flipped = ArchGraph(edge_index=(n - 1 - graph.edge_index).flip(0),
                        num_nodes=n)
    return node_levels(flipped).flip(0)


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


@pytest.mark.parametrize('name', ['resnet20_graph', 'mobilenet_graph',
                                  'random'])
def test_levels_match_node_levels(request, name):
    graph = (random_dag(60, 120, 5) if name == 'random' else
             request.getfixturevalue(name))
    schedule = SweepSchedule.from_data(graph)
    assert torch.equal(schedule.forward.level, node_levels(graph))
    assert torch.equal(schedule.backward.level, reversed_levels(graph))

    for sweep, reverse in ((schedule.forward, False),
                           (schedule.backward, True)):
        assert len(sweep) == int(sweep.level.max()) + 1
        covered = torch.cat([lvl.nodes for lvl in sweep.levels])
        assert torch.equal(covered.sort().values,
                           torch.arange(graph.num_nodes))
        real, virtual = set(), set()
        for depth, lvl in enumerate(sweep.levels):
            assert torch.equal(lvl.nodes,
                               (sweep.level == depth).nonzero().view(-1))
            src, local = lvl.edge_index
            dst = lvl.nodes[local]
            assert (sweep.level[src] < depth).all()
            real.update(zip(src.tolist(), dst.tolist()))
            vsrc, vlocal = lvl.virtual_edge_index
            assert (sweep.level[vsrc] < depth).all()
            virtual.update(zip(vsrc.tolist(), lvl.nodes[vlocal].tolist(),
                               lvl.virtual_edge_dist.tolist()))
        edge_index = graph.edge_index.flip(0) if reverse else graph.edge_index
        ve_index = (graph.virtual_edge_index.flip(0) if reverse else
                    graph.virtual_edge_index)
        assert real == set(zip(*edge_index.tolist()))
        assert sum(lvl.num_real for lvl in sweep.levels) == len(real)
        assert virtual == set(zip(*ve_index.tolist(),
                                  graph.virtual_edge_dist.tolist()))


def test_batch_levels_merge_graph_levels(resnet20_graph, small_cnn_graph):
    batch = Batch.from_data_list([resnet20_graph, small_cnn_graph])
    schedule = SweepSchedule.from_data(batch)
    expected = torch.cat([node_levels(resnet20_graph),
                          node_levels(small_cnn_graph)])
    assert torch.equal(schedule.forward.level, expected)
    expected = torch.cat([reversed_levels(resnet20_graph),
                          reversed_levels(small_cnn_graph)])
    assert torch.equal(schedule.backward.level, expected)


def assert_same_schedule(listed, batched):
    assert listed.num_nodes == batched.num_nodes
    for a, b in ((listed.forward, batched.forward),
                 (listed.backward, batched.backward)):
        assert torch.equal(a.level, b.level)
        for name in ('node_order', 'level_ptr', 'real_ptr', 'real_src',
                     'virtual_ptr', 'virtual_src', 'virtual_dist'):
            assert torch.equal(getattr(a.compressed(), name),
                               getattr(b.compressed(), name)), name


@pytest.mark.parametrize('seed', range(4))
def test_schedule_from_a_list_of_random_dags_with_repeats(seed):
    pool = [random_dag(n, e, 10 * seed + k) for k, (n, e) in
            enumerate([(30, 60), (12, 11), (2, 0), (45, 40)])]
    order = torch.randint(0, len(pool), (7, ),
                          generator=torch.Generator().manual_seed(seed))
    graphs = [pool[k] for k in order.tolist()]
    assert_same_schedule(SweepSchedule.from_data_list(graphs),
                         SweepSchedule.from_data(Batch.from_data_list(graphs)))


def test_schedule_from_data_list_equals_the_batch_schedule(resnet20_graph,
                                                          small_cnn_graph):
    graphs = [resnet20_graph, small_cnn_graph, resnet20_graph]
    assert_same_schedule(SweepSchedule.from_data_list(graphs),
                         SweepSchedule.from_data(Batch.from_data_list(graphs)))
    # A graph without virtual edges batches with graphs that have some.
    bare = ArchGraph(edge_index=resnet20_graph.edge_index,
                     num_nodes=resnet20_graph.num_nodes)
    mixed = SweepSchedule.from_data_list([bare, small_cnn_graph])
    empty = ArchGraph(edge_index=resnet20_graph.edge_index,
                      virtual_edge_index=torch.empty(2, 0, dtype=torch.long),
                      virtual_edge_dist=torch.empty(0, dtype=torch.long),
                      num_nodes=resnet20_graph.num_nodes)
    expected = SweepSchedule.from_data(Batch.from_data_list([empty,
                                                             small_cnn_graph]))
    assert torch.equal(mixed.backward.compressed().virtual_src,
                       expected.backward.compressed().virtual_src)
    with pytest.raises(ValueError, match='at least one graph'):
        SweepSchedule.from_data_list([])


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


def test_invalid_graphs_raise():
    with pytest.raises(ValueError, match='cycle'):
        SweepSchedule.from_graph(torch.tensor([[0, 1, 2], [1, 2, 0]]))
    with pytest.raises(ValueError, match='virtual edge'):
        SweepSchedule.from_graph(torch.tensor([[0, 1], [1, 2]]),
                                 torch.tensor([[2], [0]]), torch.tensor([2]))
    gnn = make_gnn()
    schedule = SweepSchedule.from_graph(torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match='rows'):
        gnn(torch.randn(3, HIDDEN), schedule)
    # The reference needs ids in topological order.
    with pytest.raises(ValueError, match='lower to higher'):
        reference_gated_gnn(gnn, torch.randn(2, HIDDEN),
                            torch.tensor([[1], [0]]))


def test_reference_with_prebuilt_adjacency():
    graph = random_dag(30, 50, 4)
    gnn = make_gnn()
    h = states(graph)
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
    assert repr(SweepSchedule.from_graph(torch.tensor([[0], [1]]))) == \
        'SweepSchedule(num_nodes=2, forward_levels=2, backward_levels=2)'
