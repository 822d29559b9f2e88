r"""One sweep (forward or backward) of the gated GNN over a graph, split
into topological levels."""
import functools
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.graph import node_levels
from ghnlib.nn.compressed_sweep import CompressedSweep
from ghnlib.nn.index_dtypes import index_dtype, sort_key_dtype
from ghnlib.nn.segment_gather import segment_gather
from ghnlib.nn.sweep_level import SweepLevel

__all__ = ['Sweep']


class Sweep:
    r"""One sweep (forward or backward) split into topological levels: the
    level of a node is the length of the longest path reaching it over the
    sweep's edges (:func:`ghnlib.graph.node_levels`), so every edge,
    virtual edges included, enters a strictly later level.

    Args:
        level (LongTensor): Level of every node. Shape :math:`[N]`.
        compressed (CompressedSweep): The sweep as flat arrays.

    Build one with :meth:`from_edges` or :meth:`concatenate`.

    Attributes:
        level (LongTensor): Level of every node. Shape :math:`[N]`.
        levels (List[SweepLevel]): The levels in the order they are
            processed (built on first use from :meth:`compressed`).
    """
    def __init__(self, level: Tensor, compressed: CompressedSweep):
        self.level = level
        self._compressed = compressed
        self._levels: Optional[List[SweepLevel]] = None

    def __len__(self) -> int:
        return self._compressed.num_levels

    def compressed(self) -> CompressedSweep:
        """The sweep as one node order and per-node in-edge lists, the
        layout of the compiled sweep."""
        return self._compressed

    @property
    def levels(self) -> List[SweepLevel]:
        if self._levels is None:
            self._levels = self._compressed.levels()
        return self._levels

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'Sweep':
        """The sweep on another device."""
        return Sweep(self.level.to(device, non_blocking=non_blocking),
                     self._compressed.to(device, non_blocking))

    @classmethod
    def from_edges(cls, src: Tensor, dst: Tensor, virtual_src: Tensor,
                   virtual_dst: Tensor, virtual_dist: Tensor,
                   num_nodes: int) -> 'Sweep':
        r"""The sweep along the edges :obj:`src` → :obj:`dst` (pass them
        swapped for the backward sweep).

        Args:
            src (LongTensor): Sources of the data-flow edges.
                Shape :math:`[E]`.
            dst (LongTensor): Their targets. Shape :math:`[E]`.
            virtual_src (Tensor): Sources of the virtual edges, in
                :func:`~ghnlib.nn.index_dtypes.index_dtype` of
                :obj:`num_nodes`. Shape :math:`[V]`.
            virtual_dst (Tensor): Their targets, in the same type.
                Shape :math:`[V]`.
            virtual_dist (Tensor): Their lengths, in
                :func:`~ghnlib.nn.index_dtypes.length_dtype`.
                Shape :math:`[V]`.
            num_nodes (int): Number of nodes :math:`N`.

        Raises:
            GhnlibError: If the edges have a cycle or a virtual edge does not
                follow the data-flow order.
        """
        # The per-edge temporaries below stay as narrow as the virtual
        # edges: they outnumber nodes about a hundredfold.
        level = node_levels(torch.stack([src, dst]), num_nodes)
        narrow_level = level.to(virtual_src.dtype)
        if virtual_src.numel() > 0 and not bool(
                (narrow_level[virtual_src] < narrow_level[virtual_dst]).all()):
            raise GhnlibError(
                'a virtual edge goes against the topological order of the '
                'data-flow edges (virtual edges must follow directed paths): '
                'compute them with ghnlib.graph.virtual_edges')
        num_levels = int(level.max()) + 1 if num_nodes > 0 else 0
        device = level.device
        # Nodes sorted by level, then by id; `position` is where each lands.
        node_order = torch.argsort(level.to(sort_key_dtype(num_levels)),
                                   stable=True)
        level_ptr = torch.zeros(num_levels + 1, dtype=torch.long,
                                device=device)
        torch.cumsum(torch.bincount(level, minlength=num_levels), 0,
                     out=level_ptr[1:])
        position = torch.empty(num_nodes, dtype=sort_key_dtype(num_nodes),
                               device=device)
        position[node_order] = torch.arange(num_nodes, device=device,
                                            dtype=position.dtype)

        def rows(target):
            # In-edges grouped by the target's position, in edge order.
            key = position[target]
            order = torch.argsort(key, stable=True)
            ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
            torch.cumsum(torch.bincount(key, minlength=num_nodes), 0,
                         out=ptr[1:])
            return ptr, order

        real_ptr, order = rows(dst)
        real_src = src[order]
        virtual_ptr, order = rows(virtual_dst)
        return cls(level, CompressedSweep(node_order, level_ptr, real_ptr,
                                          real_src, virtual_ptr,
                                          virtual_src[order],
                                          virtual_dist[order]))

    @classmethod
    def concatenate(cls, sweeps: Sequence['Sweep'], sizes: Sequence[int],
                    members: Sequence[int]) -> 'Sweep':
        r"""The sweep of a batch whose :math:`b`-th graph is
        ``sweeps[members[b]]`` (of ``sizes[members[b]]`` nodes): level
        :math:`l` of the batch is level :math:`l` of every member in turn,
        so every array is a gather of segments of the members' arrays, with
        node ids shifted by the member's offset.

        Args:
            sweeps (Sequence[Sweep]): The sweeps of the distinct graphs.
            sizes (Sequence[int]): Their numbers of nodes.
            members (Sequence[int]): Which distinct graph each graph of the
                batch is.
        """
        compressed = [sweep.compressed() for sweep in sweeps]
        device = compressed[0].node_order.device
        num_levels = max(c.num_levels for c in compressed)
        member = torch.tensor(members, dtype=torch.long)
        size = torch.tensor(sizes, dtype=torch.long)
        node_offset = torch.cumsum(size[member], 0) - size[member]
        num_nodes = int(size[member].sum())
        # Segment (l, b), level-major: level l of member b, whose node ids
        # are shifted by the member's first node.
        shift = node_offset.expand(num_levels, -1).reshape(-1)
        # Level boundaries of every distinct graph, padded to the batch's.
        level_ptr = torch.stack([_padded(c.level_ptr.cpu(), num_levels + 1)
                                 for c in compressed])

        def segments(bounds, library_start):
            # Where each segment starts in the library, and its length,
            # from the distinct graphs' [D, L + 1] boundaries.
            lo = bounds[member, :-1].t()
            lengths = (bounds[member, 1:].t() - lo).reshape(-1)
            return (lo + library_start[member]).reshape(-1), lengths

        real_ptrs = [c.real_ptr.cpu() for c in compressed]
        virtual_ptrs = [c.virtual_ptr.cpu() for c in compressed]
        node_order, node_start = _library([c.node_order.cpu()
                                           for c in compressed])
        starts, node_lengths = segments(level_ptr, node_start)
        node_order, real_counts, virtual_counts = segment_gather(
            [node_order, _library([p[1:] - p[:-1] for p in real_ptrs])[0],
             _library([p[1:] - p[:-1] for p in virtual_ptrs])[0]],
            starts, node_lengths, shift)

        def edge_segments(ptrs, library_start):
            return segments(torch.stack([ptr[level_ptr[d]] for d, ptr
                                         in enumerate(ptrs)]), library_start)

        def pointers(counts):
            ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
            torch.cumsum(counts, 0, out=ptr[1:])
            return ptr

        real_src, real_start = _library([c.real_src.cpu()
                                         for c in compressed])
        real_src, = segment_gather([real_src],
                            *edge_segments(real_ptrs, real_start), shift)
        narrow = index_dtype(num_nodes)
        lengths = functools.reduce(torch.promote_types,
                                   [c.virtual_dist.dtype for c in compressed])
        virtual_src, virtual_start = _library(
            [c.virtual_src.cpu().to(narrow) for c in compressed])
        virtual_src, virtual_dist = segment_gather(
            [virtual_src, _library([c.virtual_dist.cpu().to(lengths)
                                    for c in compressed])[0]],
            *edge_segments(virtual_ptrs, virtual_start), shift)
        level_counts = node_lengths.view(num_levels, len(members)).sum(1)
        batch_level_ptr = torch.zeros(num_levels + 1, dtype=torch.long)
        torch.cumsum(level_counts, 0, out=batch_level_ptr[1:])
        level = torch.cat([sweeps[d].level.cpu() for d in members])
        return cls(level, CompressedSweep(
            node_order, batch_level_ptr, pointers(real_counts), real_src,
            pointers(virtual_counts), virtual_src, virtual_dist)).to(device)


def _padded(ptr: Tensor, length: int) -> Tensor:
    """:obj:`ptr` extended to :obj:`length` entries with its last value."""
    return torch.cat([ptr, ptr[-1:].expand(length - ptr.numel())])


def _library(arrays: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    """The distinct graphs' arrays end to end, and where each starts."""
    counts = torch.tensor([array.numel() for array in arrays])
    return torch.cat(arrays), torch.cumsum(counts, 0) - counts
