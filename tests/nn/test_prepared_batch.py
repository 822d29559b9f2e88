import math

import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.errors import GhnlibError
from ghnlib.nn import PreparedBatch, SweepSchedule


def test_prepares_batch_schedule_and_plan(resnet20_graph, small_cnn_graph):
    graphs = [resnet20_graph, small_cnn_graph, resnet20_graph]
    prepared = PreparedBatch(graphs, 10, (64, 64, 3, 3))
    assert len(prepared) == prepared.num_graphs == 3
    assert prepared.num_nodes == sum(g.num_nodes for g in graphs)
    assert prepared.device == torch.device('cpu')
    # The virtual edges live in the schedule only.
    assert 'virtual_edge_index' not in prepared.batch.keys()
    reference = SweepSchedule.from_data(Batch.from_data_list(graphs))
    for mine, theirs in ((prepared.schedule.forward, reference.forward),
                         (prepared.schedule.backward, reference.backward)):
        assert torch.equal(mine.compressed().virtual_src,
                           theirs.compressed().virtual_src)
    names = prepared.parameter_names()
    assert [sorted(n) for n in names] == [
        sorted(p for ps in g.node_params for p in ps) for g in graphs]
    assert prepared.num_elements == sum(
        math.prod(shape) for g in graphs for shapes in g.param_shapes
        for shape in shapes)
    out = prepared.empty_output(torch.float64)
    assert out.shape == (prepared.num_elements, ) and \
        out.dtype == torch.float64 and out.is_contiguous()
    assert repr(prepared) == (
        f'PreparedBatch(num_graphs=3, num_nodes={prepared.num_nodes}, '
        f'num_elements={prepared.num_elements}, device=cpu)')


def test_changing_a_graph_later_leaves_it_unchanged(resnet20_graph):
    graph = resnet20_graph.clone()
    prepared = PreparedBatch([graph], 10, (64, 64, 3, 3))
    ops = prepared.batch.op.clone()
    graph.op.zero_()
    assert torch.equal(prepared.batch.op, ops)


def test_bad_inputs_raise(resnet20_graph):
    with pytest.raises(GhnlibError, match='at least one graph'):
        PreparedBatch([], 10, (64, 64, 3, 3))
    with pytest.raises(GhnlibError, match='graph 1 is a Linear, not an '
                                          'ArchGraph'):
        PreparedBatch([resnet20_graph, torch.nn.Linear(2, 2)], 10,
                      (64, 64, 3, 3))
    with pytest.raises(GhnlibError, match='four sizes'):
        PreparedBatch([resnet20_graph], 10, (64, 64, 3))
