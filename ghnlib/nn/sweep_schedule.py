r"""The level-by-level plan of the forward and backward sweeps of the gated
GNN over a (batched) graph."""
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.nn.index_dtypes import index_dtype, length_dtype
from ghnlib.nn.sweep import Sweep

__all__ = ['SweepSchedule']


class SweepSchedule:
    r"""The level-by-level plan of the forward and backward sweeps of
    :class:`~ghnlib.nn.GatedGNN` over one (batched) graph, computed once per
    graph.

    The level of a node is the length of the longest path reaching it from
    a source (forward sweep) or from it to a sink (backward sweep, which
    runs over the reversed edges), see :func:`ghnlib.graph.node_levels`:

    .. math::
        \ell^{\rightarrow}(v) = \max_{(u, v) \in \mathcal{E}}
        \ell^{\rightarrow}(u) + 1, \qquad
        \ell^{\leftarrow}(u) = \max_{(u, v) \in \mathcal{E}}
        \ell^{\leftarrow}(v) + 1

    (:math:`0` for nodes without incoming edges of the sweep), so every
    edge, virtual edges included, enters a strictly later level and
    all nodes of a level can be updated at once. Levels of the graphs of a
    batch are merged (level :math:`l` of every graph is one step).

    Args:
        forward (Sweep): The forward sweep.
        backward (Sweep): The backward sweep (reversed edges).
        num_nodes (int): Number of nodes :math:`N`.

    Build one with :meth:`from_graph`, :meth:`from_data` or
    :meth:`from_data_list`.
    """
    def __init__(self, forward: Sweep, backward: Sweep, num_nodes: int):
        self.forward = forward
        self.backward = backward
        self.num_nodes = num_nodes

    @classmethod
    def from_graph(cls, edge_index: Tensor,
                   virtual_edge_index: Optional[Tensor] = None,
                   virtual_edge_dist: Optional[Tensor] = None,
                   num_nodes: Optional[int] = None) -> 'SweepSchedule':
        r"""Builds the schedule from edge tensors.

        Args:
            edge_index (LongTensor): Data-flow edges of a DAG.
                Shape :math:`[2, E]`.
            virtual_edge_index (LongTensor, optional): Virtual edges, each
                along a directed path. Shape :math:`[2, V]`.
                (default: :obj:`None`, none)
            virtual_edge_dist (LongTensor, optional): Their shortest-path
                lengths :math:`s_{uv}`. Shape :math:`[V]`.
                (default: :obj:`None`)
            num_nodes (int, optional): Number of nodes :math:`N`.
                (default: :obj:`None`, one more than the largest index)

        Raises:
            GhnlibError: If the edges have a cycle or a virtual edge does not
                follow the data-flow order.
        """
        edge_index = edge_index.long()
        device = edge_index.device
        if virtual_edge_index is None:
            virtual_edge_index = torch.empty(2, 0, dtype=torch.long,
                                             device=device)
            virtual_edge_dist = torch.empty(0, dtype=torch.long, device=device)
        elif virtual_edge_dist is None:
            raise GhnlibError('virtual_edge_index needs virtual_edge_dist, '
                              'their shortest-path lengths')
        if num_nodes is None:
            num_nodes = int(max(edge_index.max() if edge_index.numel() else -1,
                                virtual_edge_index.max()
                                if virtual_edge_index.numel() else -1)) + 1
        virtual_edge_index = virtual_edge_index.to(index_dtype(num_nodes))
        virtual_edge_dist = virtual_edge_dist.to(length_dtype(
            int(virtual_edge_dist.max()) if virtual_edge_dist.numel() else 1))
        src, dst = edge_index
        vsrc, vdst = virtual_edge_index
        forward = Sweep.from_edges(src, dst, vsrc, vdst, virtual_edge_dist,
                                   num_nodes)
        backward = Sweep.from_edges(dst, src, vdst, vsrc, virtual_edge_dist,
                                    num_nodes)
        return cls(forward, backward, num_nodes)

    @classmethod
    def from_data(cls, data: Any) -> 'SweepSchedule':
        r"""Builds the schedule of an :class:`~ghnlib.graph.ArchGraph` or of
        a :class:`torch_geometric.data.Batch` of them (any object with
        ``edge_index``, ``num_nodes`` and optionally ``virtual_edge_index``
        and ``virtual_edge_dist``)."""
        return cls.from_graph(data.edge_index,
                              getattr(data, 'virtual_edge_index', None),
                              getattr(data, 'virtual_edge_dist', None),
                              data.num_nodes)

    @classmethod
    def from_data_list(cls, graphs: Sequence[Any]) -> 'SweepSchedule':
        r"""Builds the schedule of the batch of :obj:`graphs` (node ids
        offset as in :meth:`torch_geometric.data.Batch.from_data_list`)
        from the schedules of its distinct graphs, without batching their
        edges: equal to :meth:`from_data` of the batch, at the cost of one
        gather per array, and a graph repeated in the batch is scheduled
        once."""
        if len(graphs) == 0:
            raise GhnlibError('SweepSchedule.from_data_list needs at least '
                              'one graph')
        # Keyed on identity for the duration of this call only, while
        # `graphs` holds every graph.
        distinct: dict = {}
        members = []
        for graph in graphs:
            if id(graph) not in distinct:
                distinct[id(graph)] = (len(distinct), cls.from_data(graph))
            members.append(distinct[id(graph)][0])
        schedules = [schedule for _, schedule in distinct.values()]
        sizes = [schedule.num_nodes for schedule in schedules]
        num_nodes = sum(sizes[d] for d in members)
        return cls(
            Sweep.concatenate([s.forward for s in schedules], sizes, members),
            Sweep.concatenate([s.backward for s in schedules], sizes,
                              members),
            num_nodes)

    @property
    def num_levels(self) -> Tuple[int, int]:
        """Number of levels of the forward and of the backward sweep."""
        return len(self.forward), len(self.backward)

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'SweepSchedule':
        """The schedule on another device (indices stay integer)."""
        return SweepSchedule(self.forward.to(device, non_blocking),
                             self.backward.to(device, non_blocking),
                             self.num_nodes)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_nodes={self.num_nodes}, '
                f'forward_levels={len(self.forward)}, '
                f'backward_levels={len(self.backward)})')
