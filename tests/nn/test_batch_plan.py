import math

import torch

from ghnlib.nn.batch_plan import BatchPlan
from ghnlib.nn.parameter_plan import plan_parameters


def test_layout_of_a_batch(resnet20_graph, small_cnn_graph):
    graphs = [resnet20_graph, small_cnn_graph, resnet20_graph]
    offsets = [0, resnet20_graph.num_nodes,
               resnet20_graph.num_nodes + small_cnn_graph.num_nodes]
    plan = BatchPlan(graphs, offsets, 10, (8, 8, 3, 3), torch.device('cpu'))
    tasks = [task for g in graphs for task in plan_parameters(g, 10,
                                                              (8, 8, 3, 3))]
    nodes = [offset + task.node for g, offset in zip(graphs, offsets)
             for task in plan_parameters(g, 10, (8, 8, 3, 3))]
    assert plan.names == [task.name for task in tasks]
    assert plan.num_tasks == len(tasks)
    assert plan.graph_tasks[1] == (len(plan_parameters(resnet20_graph, 10)),
                                   len(plan_parameters(resnet20_graph, 10))
                                   + len(plan_parameters(small_cnn_graph,
                                                         10)))
    owners = plan.owners.tolist()
    assert owners == sorted(set(nodes))
    # Every weight belongs to one group; its code row is its node's.
    grouped = sorted(k for g in plan.weight_groups for k in g.tasks)
    assert grouped == [k for k, t in enumerate(tasks) if t.kind == 'weight']
    for group in plan.weight_groups:
        for k, row in zip(group.tasks, group.index.tolist()):
            assert owners[row] == nodes[k]
            assert tasks[k].crop == group.crop
    assert plan.num_elements == sum(math.prod(t.shape) for t in tasks)
    # Vector element j reads entry j mod O of its node's slot in the
    # [nodes, 2, O] decoded pairs.
    pair_nodes = plan.vector_index.tolist()
    expected = []
    for k in plan.vector_tasks:
        pair = pair_nodes.index(owners.index(nodes[k]))
        size = math.prod(tasks[k].shape)
        expected += [(pair * 2 + tasks[k].slot) * 8 + j % 8
                     for j in range(size)]
    assert plan.vector_source.dtype == torch.int32
    assert plan.vector_source.tolist() == expected
