"""Random DAGs shared by the graph, GNN and op tests."""
import torch

from ghnlib.graph import virtual_edges
from ghnlib.graph.arch_graph import ArchGraph


def random_dag_edges(num_nodes, num_edges, seed, max_span=8):
    """Edges from lower to higher ids, each spanning fewer than `max_span`
    ids; some nodes end up without in-edges, some without out-edges and
    some isolated."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes - 1, (num_edges, ), generator=generator)
    span = torch.randint(1, max_span, (num_edges, ), generator=generator)
    dst = torch.minimum(src + span, torch.tensor(num_nodes - 1))
    return torch.unique(torch.stack([src, dst]), dim=1)


def random_dag(num_nodes, num_edges, seed, cutoff=50):
    """A random DAG as an ArchGraph with its virtual edges."""
    edge_index = random_dag_edges(num_nodes, num_edges, seed)
    ve_index, ve_dist = virtual_edges(edge_index, num_nodes, cutoff)
    return ArchGraph(edge_index=edge_index, virtual_edge_index=ve_index,
                     virtual_edge_dist=ve_dist, num_nodes=num_nodes)
