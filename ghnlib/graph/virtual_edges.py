r"""Virtual edges: shortest forward paths between nodes, up to a cutoff."""
from typing import Tuple

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ['virtual_edges']

# Sources per shortest-path call: bounds the dense distance block in memory.
_BLOCK_ELEMENTS = 1 << 22


def virtual_edges(edge_index: torch.Tensor, num_nodes: int,
                  cutoff: int) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""All pairs :math:`(u, v)` with :math:`1 < s_{uv} \leq` :obj:`cutoff`.

    :math:`s_{uv}` is the length of the shortest directed path from
    :math:`u` to :math:`v`. Breadth-first searches stop at the cutoff and run
    in blocks of sources, so graphs of many thousands of nodes need neither
    an :math:`N \times N` matrix nor a Python loop over nodes.

    Args:
        edge_index (LongTensor): Data-flow edges. Shape :math:`[2, E]`.
        num_nodes (int): Number of nodes :math:`N`.
        cutoff (int): Longest path kept, :math:`s_{\max}`.

    Returns:
        ``(virtual_edge_index [2, V], virtual_edge_dist [V])``.
    """
    empty = (torch.empty(2, 0, dtype=torch.long),
             torch.empty(0, dtype=torch.long))
    if cutoff < 2 or edge_index.numel() == 0 or num_nodes < 3:
        return empty
    src, dst = edge_index.numpy()
    adjacency = csr_matrix((np.ones(len(src), dtype=np.float32), (src, dst)),
                           shape=(num_nodes, num_nodes))
    # Only nodes with an outgoing edge can start a path.
    sources = np.unique(src)
    block = max(1, _BLOCK_ELEMENTS // num_nodes)
    rows, cols, dists = [], [], []
    for start in range(0, len(sources), block):
        chunk = sources[start:start + block]
        dist = dijkstra(adjacency, directed=True, unweighted=True,
                        indices=chunk, limit=cutoff + 0.5)
        r, c = np.nonzero((dist > 1.5) & np.isfinite(dist))
        rows.append(chunk[r])
        cols.append(c)
        dists.append(dist[r, c])
    if not rows:
        return empty
    index = torch.from_numpy(np.stack([np.concatenate(rows),
                                       np.concatenate(cols)]).astype(np.int64))
    dist = torch.from_numpy(np.concatenate(dists).astype(np.int64))
    return index, dist
