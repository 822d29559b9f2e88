import sys

import networkx as nx
import pytest
import torch

from ghnlib.graph import virtual_edges
from random_graphs import random_dag_edges


def random_dag(num_nodes, num_edges, seed):
    return random_dag_edges(num_nodes, num_edges, seed, max_span=6)


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('cutoff', [2, 5, 50])
def test_matches_networkx_shortest_paths(seed, cutoff):
    edge_index = random_dag(60, 120, seed)
    index, dist = virtual_edges(edge_index, 60, cutoff)
    graph = nx.DiGraph(edge_index.t().tolist())
    lengths = dict(nx.all_pairs_shortest_path_length(graph, cutoff=cutoff))
    expected = sorted((u, v, d) for u, row in lengths.items()
                      for v, d in row.items() if d > 1)
    assert sorted(zip(*index.tolist(), dist.tolist())) == expected


def test_large_graph_in_blocks(monkeypatch):
    module = sys.modules["ghnlib.graph.virtual_edges"]
    edge_index = random_dag(3000, 6000, 0)
    whole = virtual_edges(edge_index, 3000, 10)
    monkeypatch.setattr(module, '_BLOCK_ELEMENTS', 3000 * 7)  # 7 sources a block
    blocked = virtual_edges(edge_index, 3000, 10)
    assert whole[0].size(1) > 10000
    order = lambda e: sorted(zip(*e[0].tolist(), e[1].tolist()))  # noqa: E731
    assert order(whole) == order(blocked)


def test_degenerate_inputs():
    empty = torch.empty(2, 0, dtype=torch.long)
    index, dist = virtual_edges(empty, 5, 10)
    assert index.shape == (2, 0) and dist.shape == (0, )
    chain = torch.tensor([[0, 1], [1, 2]])
    assert virtual_edges(chain, 3, 1)[0].size(1) == 0
    assert virtual_edges(chain, 3, 2)[0].tolist() == [[0], [2]]
