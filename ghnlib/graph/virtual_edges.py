r"""Virtual edges: shortest forward paths between nodes, up to a cutoff."""
from typing import NamedTuple, Tuple

import numpy as np
import torch

__all__ = ['virtual_edges']

# (source, node) pairs per block of sources searched together: bounds the
# memory of the dense distance block.
_BLOCK_ELEMENTS = 1 << 22
# Steps between two tests of whether a search has stopped growing.
_CHECK_EVERY = 8


class _Predecessors(NamedTuple):
    r"""In-edges of a graph whose nodes are relabelled by decreasing in-degree,
    so that the nodes with at least :math:`d` predecessors form a prefix."""
    rank: np.ndarray  # new label of each node
    first: np.ndarray  # first predecessor of each node, or the node itself
    second: np.ndarray  # second predecessor of the first len(second) nodes
    rest: np.ndarray  # further predecessors, grouped by node
    rest_starts: np.ndarray  # start in rest of the first len(rest_starts)


def _predecessors(src: np.ndarray, dst: np.ndarray,
                  num_nodes: int) -> _Predecessors:
    in_degree = np.bincount(dst, minlength=num_nodes)
    order = np.argsort(-in_degree, kind='stable')
    rank = np.empty_like(order)
    rank[order] = np.arange(num_nodes)
    in_degree = in_degree[order]
    pred = rank[src][np.argsort(rank[dst], kind='stable')]
    start = np.cumsum(in_degree) - in_degree
    position = np.arange(len(pred)) - np.repeat(start, in_degree)
    with_one, with_two, with_more = (np.count_nonzero(in_degree > d)
                                     for d in range(3))
    first = np.arange(num_nodes)
    first[:with_one] = pred[start[:with_one]]
    return _Predecessors(
        rank=rank, first=first, second=pred[start[:with_two] + 1],
        rest=pred[position > 1],
        rest_starts=start[:with_more] - 2 * np.arange(with_more))


def _step(reach: np.ndarray, preds: _Predecessors) -> np.ndarray:
    r"""Nodes reached in at most one more step: each row of :obj:`reach` is a
    node, each bit a source; a node gets the bits of its predecessors."""
    out = reach.take(preds.first, axis=0)
    out |= reach
    out[:len(preds.second)] |= reach.take(preds.second, axis=0)
    if len(preds.rest_starts):
        out[:len(preds.rest_starts)] |= np.bitwise_or.reduceat(
            reach.take(preds.rest, axis=0), preds.rest_starts, axis=0)
    return out


def _distances(preds: _Predecessors, sources: np.ndarray, num_nodes: int,
               cutoff: int) -> np.ndarray:
    r"""Shortest path lengths up to :obj:`cutoff` from each of
    :obj:`sources` to each node, as a :math:`[|sources|, N]` array; zero
    where a node is not reached."""
    words = (len(sources) + 63) // 64
    bits = np.arange(len(sources))
    reach = np.zeros((num_nodes, words), dtype=np.uint64)
    reach[preds.rank[sources], bits // 64] = np.left_shift(
        np.uint64(1), (bits % 64).astype(np.uint64))
    # Distances in binary, one bit plane each. The set R_k of nodes reached
    # within k steps only grows, so bit j of a distance d <= K is the XOR of
    # R_k over the steps k <= K where bit j of k and of k + 1 differ, and of
    # R_K if bit j of K + 1 is set.
    planes = np.zeros((cutoff.bit_length(), num_nodes, words),
                      dtype=np.uint64)
    planes[0] ^= reach
    for step in range(1, cutoff + 1):
        previous, reach = reach, _step(reach, preds)
        for j in range(min((step ^ (step + 1)).bit_length(), len(planes))):
            planes[j] ^= reach
        if step % _CHECK_EVERY == 0 and np.array_equal(reach, previous):
            break
    for j in range(len(planes)):
        if (step + 1) >> j & 1:
            planes[j] ^= reach
    dtype = np.min_scalar_type(cutoff)
    dist = np.zeros((num_nodes, len(sources)), dtype=dtype)
    for j, plane in enumerate(planes[:, preds.rank]):
        dist += np.unpackbits(plane.view(np.uint8), axis=1,
                              count=len(sources),
                              bitorder='little') * dtype.type(1 << j)
    return np.ascontiguousarray(dist.T)


def virtual_edges(edge_index: torch.Tensor, num_nodes: int,
                  cutoff: int) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""All pairs :math:`(u, v)` with :math:`1 < s_{uv} \leq` :obj:`cutoff`.

    :math:`s_{uv}` is the length of the shortest directed path from
    :math:`u` to :math:`v`. Breadth-first searches stop at the cutoff and run
    in blocks of sources, each source a bit, so graphs of many thousands of
    nodes need neither an :math:`N \times N` matrix nor a Python loop over
    nodes. Pairs are sorted by source, then by target.

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
    preds = _predecessors(src, dst, num_nodes)
    # Only nodes with an outgoing edge can start a path.
    sources = np.flatnonzero(np.bincount(src, minlength=num_nodes))
    # No shortest path is longer than N - 1.
    cutoff = int(min(cutoff, num_nodes - 1))
    block = max(1, _BLOCK_ELEMENTS // num_nodes)
    rows, cols, dists = [], [], []
    for start in range(0, len(sources), block):
        chunk = sources[start:start + block]
        dist = _distances(preds, chunk, num_nodes, cutoff)
        far = dist > 1
        per_source = np.count_nonzero(far, axis=1)
        flat = np.flatnonzero(far)
        rows.append(np.repeat(chunk, per_source))
        cols.append(flat - np.repeat(np.arange(len(chunk)) * num_nodes,
                                     per_source))
        dists.append(dist.ravel()[flat])
    index = np.stack([np.concatenate(rows), np.concatenate(cols)])
    dist = np.concatenate(dists)
    return (torch.from_numpy(index.astype(np.int64, copy=False)),
            torch.from_numpy(dist.astype(np.int64)))
