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


def breadth_first_virtual_edges(edges, num_nodes, cutoff):
    """(u, v, s_uv) for 1 < s_uv <= cutoff, by a plain BFS from every node,
    sorted by source, then target."""
    successors = [[] for _ in range(num_nodes)]
    for u, v in edges:
        successors[u].append(v)
    expected = []
    for u in range(num_nodes):
        dist, frontier, step = {u: 0}, [u], 0
        while frontier and step < cutoff:
            step += 1
            reached = []
            for x in frontier:
                for w in successors[x]:
                    if w not in dist:
                        dist[w] = step
                        reached.append(w)
            frontier = reached
        expected += [(u, v, d) for v, d in sorted(dist.items()) if d > 1]
    return expected


def random_digraph(num_nodes, num_edges, seed):
    """Random edges with cycles, self-loops, repeated edges, a node of high
    in-degree and, as ids are drawn below num_nodes - 2, isolated nodes."""
    generator = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, num_nodes - 2, (2, num_edges),
                          generator=generator)
    edges[1, :num_edges // 4] = 0
    loops = torch.arange(0, num_nodes - 2, 3).repeat(2, 1)
    return torch.cat([edges, edges[:, :num_edges // 8], loops], dim=1)


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('cutoff', [2, 3, 7, 1000])
@pytest.mark.parametrize('block', [None, 5])
def test_matches_breadth_first_search(seed, cutoff, block, monkeypatch):
    num_nodes = 20 + 15 * seed
    edge_index = random_digraph(num_nodes, 2 * num_nodes, seed)
    if block is not None:
        module = sys.modules['ghnlib.graph.virtual_edges']
        monkeypatch.setattr(module, '_BLOCK_ELEMENTS', num_nodes * block)
    index, dist = virtual_edges(edge_index, num_nodes, cutoff)
    assert index.dtype == dist.dtype == torch.long
    assert index.shape == (2, dist.numel())
    expected = breadth_first_virtual_edges(edge_index.t().tolist(), num_nodes,
                                           cutoff)
    assert list(zip(*index.tolist(), dist.tolist())) == expected


def test_paths_longer_than_a_byte():
    chain = torch.stack([torch.arange(299), torch.arange(1, 300)])
    back = torch.tensor([[299, 150], [0, 0]])
    edge_index = torch.cat([chain, back], dim=1)
    index, dist = virtual_edges(edge_index, 300, 10**6)
    expected = breadth_first_virtual_edges(edge_index.t().tolist(), 300, 10**6)
    assert list(zip(*index.tolist(), dist.tolist())) == expected
    assert dist.max() == 299
