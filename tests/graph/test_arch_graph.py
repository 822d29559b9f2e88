import networkx as nx
import pytest
import torch
import torch.nn as nn
from torch_geometric.data import Batch

from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph, to_graph


def small(depth):
    return nn.Sequential(*[nn.Linear(4, 4) for _ in range(depth)])


def test_batching_offsets_every_index():
    graphs = [to_graph(small(2), input_shape=(1, 4)),
              to_graph(small(5), input_shape=(1, 4))]
    batch = Batch.from_data_list(graphs)
    n0 = graphs[0].num_nodes
    assert batch.num_nodes == n0 + graphs[1].num_nodes
    assert batch.num_graphs == 2
    for key in ('edge_index', 'virtual_edge_index'):
        first = getattr(graphs[0], key)
        second = getattr(graphs[1], key)
        assert torch.equal(getattr(batch, key),
                           torch.cat([first, second + n0], dim=1))
    assert torch.equal(batch.virtual_edge_dist,
                       torch.cat([g.virtual_edge_dist for g in graphs]))
    assert batch.input_index.tolist() == [0, n0]
    assert batch.output_index.tolist() == [n0 - 1, batch.num_nodes - 1]
    assert torch.equal(batch.op, torch.cat([g.op for g in graphs]))
    assert batch.batch.tolist() == [0] * n0 + [1] * graphs[1].num_nodes
    # Per-graph Python lists stay per graph.
    assert batch.node_params == [g.node_params for g in graphs]
    back = batch.get_example(1)
    assert torch.equal(back.virtual_edge_index, graphs[1].virtual_edge_index)
    assert back.node_params == graphs[1].node_params


def test_save_and_load_round_trip(tmp_path):
    graph = to_graph(small(3), input_shape=(1, 4))
    graph.save(tmp_path / 'g.pt')
    loaded = ArchGraph.load(tmp_path / 'g.pt')
    assert isinstance(loaded, ArchGraph)
    for key in ('op', 'node_shape', 'edge_index', 'virtual_edge_index',
                'virtual_edge_dist', 'input_index', 'output_index'):
        assert torch.equal(loaded[key], graph[key])
    assert loaded.node_params == graph.node_params
    assert loaded.param_shapes == graph.param_shapes
    assert loaded.num_nodes == graph.num_nodes
    assert not (tmp_path / 'g.pt.tmp').exists()


def test_corrupt_or_foreign_files_are_refused(tmp_path):
    (tmp_path / 'junk.pt').write_bytes(b'\x00not a torch file' * 10)
    with pytest.raises(GhnlibError, match='not a readable ArchGraph'):
        ArchGraph.load(tmp_path / 'junk.pt')
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'other.pt')
    with pytest.raises(GhnlibError, match='not an ArchGraph'):
        ArchGraph.load(tmp_path / 'other.pt')
    graph = to_graph(small(1), input_shape=(1, 4))
    graph.vocabulary_version = 0
    graph.save(tmp_path / 'old.pt')
    with pytest.raises(GhnlibError, match='vocabulary version 0'):
        ArchGraph.load(tmp_path / 'old.pt')


def test_networkx_export_matches_the_graph():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.LazyLinear(2))
    model(torch.zeros(1, 3, 6, 6))
    graph = to_graph(model, input_shape=(1, 3, 6, 6))
    g = graph.to_networkx()
    assert g.number_of_nodes() == graph.num_nodes
    assert sorted(g.edges()) == sorted(map(tuple, graph.edge_index.t().tolist()))
    assert nx.is_directed_acyclic_graph(g)
    assert [g.nodes[i]['op'] for i in g.nodes] == graph.op_names
    assert g.nodes[1]['params'] == ['0.weight']
    # Virtual edges are exactly the pairs at distance 2..cutoff in the export.
    lengths = dict(nx.all_pairs_shortest_path_length(g))
    expected = sorted((u, v, d) for u, row in lengths.items()
                      for v, d in row.items() if 1 < d <= 50)
    got = sorted(zip(*graph.virtual_edge_index.tolist(),
                     graph.virtual_edge_dist.tolist()))
    assert got == expected


def test_summary_reports_counts_and_unsupported():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.a(x)

    text = to_graph(Unused(), input_shape=(1, 2), strict=False).summary()
    assert '5 nodes' not in text and '4 nodes' in text
    assert 'linear 1' in text and 'bias 1' in text
    assert 'unsupported b.weight: not used' in text
