import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.graph import node_levels, to_graph
from ghnlib.models import get_model
from random_graphs import random_dag_edges


def longest_paths(edge_index, num_nodes):
    """Longest path to every node, by memoised recursion over in-edges."""
    sources = [[] for _ in range(num_nodes)]
    for u, v in edge_index.t().tolist():
        sources[v].append(u)
    level = {}

    def depth(v):
        if v not in level:
            level[v] = max((depth(u) + 1 for u in sources[v]), default=0)
        return level[v]

    return [depth(v) for v in range(num_nodes)]


def test_levels_by_hand():
    # 0 -> 1 -> 3, 0 -> 2 -> 3 -> 4, 0 -> 4, and 5 isolated.
    edge_index = torch.tensor([[0, 1, 0, 2, 3, 0], [1, 3, 2, 3, 4, 4]])
    levels = node_levels(edge_index, 6)
    assert levels.dtype == torch.long
    assert levels.tolist() == [0, 1, 1, 2, 3, 0]
    # Reversed edges: the distance to the farthest sink.
    assert node_levels(edge_index.flip(0), 6).tolist() == [3, 2, 2, 1, 0, 0]
    # num_nodes defaults to one more than the largest id.
    assert node_levels(edge_index).tolist() == [0, 1, 1, 2, 3]


@pytest.mark.parametrize('seed', range(3))
def test_levels_of_random_dags_whatever_the_node_ids(seed):
    edge_index = random_dag_edges(60, 150, seed)
    expected = longest_paths(edge_index, 60)
    assert node_levels(edge_index, 60).tolist() == expected
    # Relabelled at random, so that edges no longer go from lower to higher
    # ids: the levels follow the nodes.
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(seed))
    relabelled = node_levels(perm[edge_index], 60)
    assert relabelled[perm].tolist() == expected


def test_levels_of_a_resnet():
    graph = to_graph(get_model('resnet20'))
    levels = node_levels(graph.edge_index, graph.num_nodes)
    assert levels.tolist() == longest_paths(graph.edge_index,
                                            graph.num_nodes)
    src, dst = graph.edge_index
    assert (levels[src] < levels[dst]).all()


def test_graph_without_edges():
    assert node_levels(torch.empty(2, 0, dtype=torch.long), 3).tolist() == \
        [0, 0, 0]


def test_bad_inputs_raise():
    with pytest.raises(GhnlibError, match='cycle'):
        node_levels(torch.tensor([[0, 1, 2], [1, 2, 0]]))
    with pytest.raises(GhnlibError, match=r'shape \[2, E\], got \(3, 2\)'):
        node_levels(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(GhnlibError, match='integer tensor'):
        node_levels(torch.zeros(2, 2))
    with pytest.raises(GhnlibError, match='num_nodes=2 does not cover'):
        node_levels(torch.tensor([[0, 1], [1, 2]]), 2)
    with pytest.raises(GhnlibError, match=r'ids in \[-1, 1\]'):
        node_levels(torch.tensor([[-1], [1]]), 3)
