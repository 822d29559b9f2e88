r"""The nodes of one topological level of a sweep and the edges into
them."""
from dataclasses import dataclass, field
from typing import Optional, Union

import torch
from torch import Tensor

__all__ = ['SweepLevel']


@dataclass
class SweepLevel:
    r"""The nodes of one topological level and the edges into them, the
    unit of work of the level-by-level sweep of
    :class:`~ghnlib.nn.GatedGNN`.

    Attributes:
        nodes (LongTensor): Global ids of the level's nodes, ascending.
            Shape :math:`[n]`.
        msg_index (LongTensor): Every edge into the level, real edges first:
            row 0 the global id of the source, row 1 the *local* position of
            the target in :obj:`nodes`. Shape :math:`[2, E_l + V_l]`.
        num_real (int): Number of real (data-flow) edges :math:`E_l` at the
            front of :obj:`msg_index`.
        virtual_edge_dist (LongTensor): Shortest-path lengths :math:`s_{uv}`
            of the virtual edges, the last :math:`V_l` columns of
            :obj:`msg_index`. Shape :math:`[V_l]`.
    """
    nodes: Tensor
    msg_index: Tensor
    num_real: int
    virtual_edge_dist: Tensor
    # The distances as floats, cast once rather than at every forward.
    _dist: Optional[Tensor] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self._dist is None:
            self._dist = self.virtual_edge_dist.to(torch.get_default_dtype())

    @property
    def edge_index(self) -> Tensor:
        """Real edges into the level, ``[2, E_l]`` (source, local target)."""
        return self.msg_index[:, :self.num_real]

    @property
    def virtual_edge_index(self) -> Tensor:
        """Virtual edges into the level, ``[2, V_l]`` (source, local
        target)."""
        return self.msg_index[:, self.num_real:]

    @property
    def float_dist(self) -> Tensor:
        """:obj:`virtual_edge_dist` as floating-point numbers (the default
        dtype when the level was built), the divisors of the virtual
        messages."""
        return self._dist

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'SweepLevel':
        """The level on another device."""
        return SweepLevel(self.nodes.to(device, non_blocking=non_blocking),
                          self.msg_index.to(device, non_blocking=non_blocking),
                          self.num_real,
                          self.virtual_edge_dist.to(
                              device, non_blocking=non_blocking),
                          self._dist.to(device, non_blocking=non_blocking))
