r"""A sweep of the gated GNN as flat index arrays, the layout of the
compiled sweep (:func:`ghnlib.ops.gated_gnn_sweep`)."""
from dataclasses import dataclass, fields
from typing import List, Union

import torch
from torch import Tensor

from ghnlib.nn.sweep_level import SweepLevel

__all__ = ['CompressedSweep']


@dataclass
class CompressedSweep:
    r"""A sweep as flat arrays: the nodes in the order they are updated,
    where each level starts, and every node's real and virtual in-edges in
    compressed sparse rows indexed by the node's position :math:`p` in
    :obj:`node_order` (the layout of :func:`ghnlib.ops.gated_gnn_sweep`).

    Attributes:
        node_order (LongTensor): Node ids, level by level, ascending within
            a level. Shape :math:`[N]`.
        level_ptr (LongTensor): Level :math:`l` holds positions
            ``level_ptr[l]:level_ptr[l + 1]``. Shape :math:`[L + 1]`.
        real_ptr (LongTensor): Real in-edges of position :math:`p` are
            ``real_src[real_ptr[p]:real_ptr[p + 1]]``. Shape :math:`[N + 1]`.
        real_src (LongTensor): Their sources. Shape :math:`[E]`.
        virtual_ptr (LongTensor): As :obj:`real_ptr`, for virtual edges.
            Shape :math:`[N + 1]`.
        virtual_src (Tensor): Their sources, int32 (int64 for graphs of
            more than :math:`2^{31} - 1` nodes). Shape :math:`[V]`.
        virtual_dist (Tensor): Their lengths :math:`s_{uv}`, in the
            narrowest integer type that holds them (``uint8`` for the
            default cutoff of 50). Shape :math:`[V]`.

    Virtual edges outnumber nodes about a hundredfold, so their two arrays
    are kept narrow: 5 bytes per edge instead of 16.
    """
    node_order: Tensor
    level_ptr: Tensor
    real_ptr: Tensor
    real_src: Tensor
    virtual_ptr: Tensor
    virtual_src: Tensor
    virtual_dist: Tensor

    @property
    def num_levels(self) -> int:
        """Number of levels :math:`L`."""
        return self.level_ptr.numel() - 1

    def levels(self) -> List[SweepLevel]:
        """Per-level tensors: each level's nodes and the edges into it, real
        ones first, targets as positions within the level."""
        device = self.node_order.device
        level_ptr = self.level_ptr.tolist()
        num_nodes = self.node_order.numel()
        start_of = torch.repeat_interleave(
            self.level_ptr[:-1],
            self.level_ptr[1:] - self.level_ptr[:-1]).to(device)

        def local_targets(ptr):
            position = torch.repeat_interleave(
                torch.arange(num_nodes, device=device), ptr[1:] - ptr[:-1])
            return position - start_of[position]

        real_local = local_targets(self.real_ptr)
        virtual_local = local_targets(self.virtual_ptr)
        real_bounds = self.real_ptr[self.level_ptr].tolist()
        virtual_bounds = self.virtual_ptr[self.level_ptr].tolist()
        dtype = torch.get_default_dtype()
        levels = []
        for lvl in range(len(level_ptr) - 1):
            r0, r1 = real_bounds[lvl], real_bounds[lvl + 1]
            v0, v1 = virtual_bounds[lvl], virtual_bounds[lvl + 1]
            msg_index = torch.cat([
                torch.stack([self.real_src[r0:r1], real_local[r0:r1]]),
                torch.stack([self.virtual_src[v0:v1].long(),
                             virtual_local[v0:v1]])], dim=1)
            dist = self.virtual_dist[v0:v1].long()
            levels.append(SweepLevel(
                self.node_order[level_ptr[lvl]:level_ptr[lvl + 1]],
                msg_index, r1 - r0, dist, dist.to(dtype)))
        return levels

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'CompressedSweep':
        """The arrays on another device."""
        return CompressedSweep(*(
            getattr(self, f.name).to(device, non_blocking=non_blocking)
            for f in fields(self)))
