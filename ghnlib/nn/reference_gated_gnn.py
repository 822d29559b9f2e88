r"""The node-by-node definition of the gated GNN of GHN-2, which the tests
and benchmarks check and time the level-synchronous :class:`GatedGNN`
against."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.nn.gated_gnn import GatedGNN

__all__ = ['ReferenceAdjacency', 'reference_adjacency', 'reference_gated_gnn']

#: Per sweep (forward, then backward): the visiting order, the sources of
#: each node's real in-edges and the (source, distance) pairs of its virtual
#: in-edges.
ReferenceAdjacency = List[Tuple[range, List[List[int]],
                              List[List[Tuple[int, int]]]]]


def reference_adjacency(edge_index: Tensor, ve_index: Optional[Tensor],
                        ve_dist: Optional[Tensor],
                        num_nodes: int) -> ReferenceAdjacency:
    r"""The per-node Python lists :func:`reference_gated_gnn` walks: for the
    forward and then the backward sweep, the visiting order, the sources of
    each node's real in-edges and the (source, distance) pairs of its
    virtual in-edges. Separate so that benchmarks can time it apart.

    Raises:
        GhnlibError: If an edge does not go from a lower to a higher id.
    """
    real = edge_index.t().tolist()
    virtual = [] if ve_index is None else [
        (u, v, d)
        for (u, v), d in zip(ve_index.t().tolist(), ve_dist.tolist())]
    for u, v in real:
        if not u < v:
            raise GhnlibError('reference_gated_gnn needs edges from lower to '
                              f'higher node ids (got {u} -> {v})')
    for u, v, _ in virtual:
        if not u < v:
            raise GhnlibError('reference_gated_gnn needs virtual edges from '
                              f'lower to higher node ids (got {u} -> {v})')
    sweeps: ReferenceAdjacency = []
    for reverse in (False, True):
        real_in: List[List[int]] = [[] for _ in range(num_nodes)]
        virtual_in: List[List[Tuple[int, int]]] = [
            [] for _ in range(num_nodes)]
        for u, v in real:
            if reverse:
                u, v = v, u
            real_in[v].append(u)
        for u, v, d in virtual:
            if reverse:
                u, v = v, u
            virtual_in[v].append((u, d))
        order = (range(num_nodes - 1, -1, -1) if reverse else
                 range(num_nodes))
        sweeps.append((order, real_in, virtual_in))
    return sweeps


def reference_gated_gnn(gnn: GatedGNN, h: Tensor, edge_index: Tensor,
                        ve_index: Optional[Tensor] = None,
                        ve_dist: Optional[Tensor] = None, *,
                        adjacency: Optional[ReferenceAdjacency] = None
                        ) -> Tensor:
    r"""The slow node-by-node definition of :class:`GatedGNN`, used by the
    tests and benchmarks to check and time the level-synchronous one.

    Nodes are visited one at a time in increasing index order (forward
    sweep) and then in decreasing index order over the reversed edges
    (backward sweep), so edges must go from lower to higher indices (true of
    :class:`ArchGraph` and of batches of them). Uses :obj:`gnn`'s weights,
    rounds, layer norm and aggregation (:obj:`"add"`, :obj:`"mean"`,
    :obj:`"max"` or :obj:`"min"`).

    Args:
        gnn (GatedGNN): The module whose weights to use.
        h (Tensor): Node states. Shape :math:`[N, H]`.
        edge_index (LongTensor): Data-flow edges. Shape :math:`[2, E]`.
        ve_index (LongTensor, optional): Virtual edges. Shape :math:`[2, V]`.
            (default: :obj:`None`)
        ve_dist (LongTensor, optional): Their lengths. Shape :math:`[V]`.
            (default: :obj:`None`)
        adjacency (optional): The lists of :func:`reference_adjacency` for
            these edges, if already built. (default: :obj:`None`)

    Returns:
        Tensor of shape :math:`[N, H]`.
    """
    aggr = gnn.aggr if isinstance(gnn.aggr, str) else None
    if aggr not in ('add', 'sum', 'mean', 'max', 'min'):
        raise GhnlibError('reference_gated_gnn does not support '
                          f'aggr={gnn.aggr!r}: use "add", "mean", "max" or '
                          f'"min"')
    if adjacency is None:
        adjacency = reference_adjacency(edge_index, ve_index, ve_dist,
                                        h.size(0))
    for _ in range(gnn.num_rounds):
        for order, real_in, virtual_in in adjacency:
            states = list(h.unbind(0))
            for v in order:
                messages = []
                if real_in[v]:
                    messages.append(gnn.mlp(torch.stack(
                        [states[u] for u in real_in[v]])))
                if virtual_in[v]:
                    dist = torch.tensor([d for _, d in virtual_in[v]],
                                        dtype=h.dtype, device=h.device)
                    messages.append(gnn.mlp_ve(torch.stack(
                        [states[u] for u, _ in virtual_in[v]])) /
                        dist.unsqueeze(-1))
                if not messages:
                    m = torch.zeros_like(states[v])
                else:
                    stacked = torch.cat(messages)
                    if aggr in ('add', 'sum'):
                        m = stacked.sum(0)
                    elif aggr == 'mean':
                        m = stacked.mean(0)
                    elif aggr == 'max':
                        m = stacked.max(0).values
                    else:
                        m = stacked.min(0).values
                states[v] = gnn.gru(m.unsqueeze(0), states[v].unsqueeze(0))[0]
            h = torch.stack(states)
            if gnn.norm is not None:
                h = gnn.norm(h)
    return h
