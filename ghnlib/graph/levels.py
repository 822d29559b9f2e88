r"""The topological level of every node of a directed acyclic graph."""
from typing import Optional

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError

__all__ = ['node_levels']


def node_levels(edge_index: Tensor, num_nodes: Optional[int] = None
                ) -> Tensor:
    r"""The length of the longest path reaching every node from a source of
    the directed acyclic graph :obj:`edge_index`:

    .. math::
        \ell(v) = \max_{(u, v) \in \mathcal{E}} \ell(u) + 1

    (:math:`0` for nodes without in-edges). Nodes of one level do not
    depend on each other, and every edge enters a strictly later level. The
    levels of the reversed graph are ``node_levels(edge_index.flip(0))``.

    Computed by relaxing all edges at once,
    :math:`\ell(v) \leftarrow \max(\ell(v), \max_{(u, v)} \ell(u) + 1)`:
    after :math:`k` steps every level below :math:`k` is final, so it takes
    one vectorised step per level, whatever the order of the node ids.

    Args:
        edge_index (LongTensor): The edges, source in row 0 and target in
            row 1. Shape :math:`[2, E]`.
        num_nodes (int, optional): Number of nodes :math:`N`.
            (default: :obj:`None`, one more than the largest id)

    Returns:
        LongTensor of shape :math:`[N]`, on the device of
        :obj:`edge_index`.

    Raises:
        GhnlibError: If :obj:`edge_index` is not a ``[2, E]`` integer
            tensor of ids below :obj:`num_nodes`, or the graph has a cycle.
    """
    if (not isinstance(edge_index, Tensor) or edge_index.dim() != 2
            or edge_index.size(0) != 2 or edge_index.is_floating_point()
            or edge_index.is_complex() or edge_index.dtype == torch.bool):
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) \
            else type(edge_index).__name__
        raise GhnlibError(f'node_levels needs edge_index as an integer tensor '
                          f'of shape [2, E], got {shape}')
    if edge_index.numel() > 0:
        smallest, largest = int(edge_index.min()), int(edge_index.max())
    else:
        smallest, largest = 0, -1
    if num_nodes is None:
        num_nodes = largest + 1
    if smallest < 0 or num_nodes < largest + 1:
        raise GhnlibError(f'node_levels: edge_index holds ids in '
                          f'[{smallest}, {largest}], which num_nodes='
                          f'{num_nodes} does not cover: pass the number of '
                          f'nodes of the graph')
    src, dst = edge_index.long()
    level = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    if src.numel() == 0:
        return level
    for _ in range(num_nodes):
        relaxed = level.scatter_reduce(0, dst, level[src] + 1, 'amax')
        if torch.equal(relaxed, level):
            return level
        level = relaxed
    raise GhnlibError('edge_index has a cycle: levels (and the sweeps of a '
                      'GatedGNN) need a directed acyclic graph')
