import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.errors import GhnlibError
from ghnlib.graph import node_levels
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.nn import SweepSchedule
from ghnlib.nn.sweep import Sweep
from random_graphs import random_dag


def reversed_levels(graph):
    """node_levels of the reversed graph, computed on the graph relabelled
    i -> N - 1 - i (whose edges go from lower to higher ids again)."""
    n = graph.num_nodes
    return node_levels((n - 1 - graph.edge_index).flip(0), n).flip(0)


@pytest.mark.parametrize('name', ['resnet20_graph', 'mobilenet_graph',
                                  'random'])
def test_levels_match_node_levels(request, name):
    graph = (random_dag(60, 120, 5) if name == 'random' else
             request.getfixturevalue(name))
    schedule = SweepSchedule.from_data(graph)
    assert torch.equal(schedule.forward.level,
                       node_levels(graph.edge_index, graph.num_nodes))
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
    expected = torch.cat([
        node_levels(g.edge_index, g.num_nodes)
        for g in (resnet20_graph, small_cnn_graph)])
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
    with pytest.raises(GhnlibError, match='at least one graph'):
        SweepSchedule.from_data_list([])


def test_from_graph_without_virtual_edges_and_num_nodes():
    schedule = SweepSchedule.from_graph(torch.tensor([[0, 1, 1], [1, 2, 3]]))
    assert schedule.num_nodes == 4
    assert schedule.num_levels == (3, 3)
    assert schedule.forward.level.tolist() == [0, 1, 2, 2]
    assert schedule.backward.level.tolist() == [2, 1, 0, 0]
    assert schedule.forward.compressed().virtual_src.numel() == 0


def test_concatenated_sweep_in_many_gather_steps(resnet20_graph):
    # 64 copies of ResNet-20 have far more virtual edges than one gather
    # step takes: the steps must join up seamlessly.
    graphs = [resnet20_graph] * 64
    assert 64 * resnet20_graph.virtual_edge_index.size(1) > 8 * (1 << 14)
    assert_same_schedule(SweepSchedule.from_data_list(graphs),
                         SweepSchedule.from_data(Batch.from_data_list(graphs)))


def test_narrow_index_types():
    graph = random_dag(40, 80, 3)
    sweep = SweepSchedule.from_data(graph).forward
    c = sweep.compressed()
    assert (c.virtual_src.dtype, c.virtual_dist.dtype, c.real_src.dtype) == \
        (torch.int32, torch.uint8, torch.long)
    merged = Sweep.concatenate([sweep], [graph.num_nodes], [0, 0]).compressed()
    assert (merged.virtual_src.dtype, merged.virtual_dist.dtype) == \
        (torch.int32, torch.uint8)
    assert merged.virtual_src.numel() == 2 * c.virtual_src.numel()


def test_invalid_graphs_raise():
    with pytest.raises(GhnlibError, match='cycle'):
        SweepSchedule.from_graph(torch.tensor([[0, 1, 2], [1, 2, 0]]))
    with pytest.raises(GhnlibError, match='virtual edge'):
        SweepSchedule.from_graph(torch.tensor([[0, 1], [1, 2]]),
                                 torch.tensor([[2], [0]]), torch.tensor([2]))
    with pytest.raises(GhnlibError, match='needs virtual_edge_dist'):
        SweepSchedule.from_graph(torch.tensor([[0, 1], [1, 2]]),
                                 torch.tensor([[0], [2]]))


def test_repr():
    assert repr(SweepSchedule.from_graph(torch.tensor([[0], [1]]))) == \
        'SweepSchedule(num_nodes=2, forward_levels=2, backward_levels=2)'
