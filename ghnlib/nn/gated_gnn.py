r"""The gated graph neural network of GHN-2: forward and backward sweeps of a
GRU over the topological order of an architecture graph, computed one
topological level at a time."""
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from ghnlib.errors import GhnlibError
from ghnlib.nn.sweep import Sweep
from ghnlib.nn.sweep_schedule import SweepSchedule
from ghnlib.ops import gated_gnn_sweep, sweep_kernel_applies

__all__ = ['GatedGNN']


def _mlp(mlp: nn.Sequential, x: Tensor) -> Tensor:
    first, _, second = mlp
    return F.linear(F.relu(F.linear(x, first.weight, first.bias)),
                    second.weight, second.bias)


class GatedGNN(MessagePassing):
    r"""The gated graph neural network of GHN-2 from the `"Parameter
    Prediction for Unseen Deep Architectures"
    <https://arxiv.org/abs/2110.13100>`_ paper, which updates the node
    states with a GRU in topological order, over the graph and then over the
    reversed graph, so information crosses a whole architecture in one round:

    .. math::
        \mathbf{m}_v &= \sum_{u \in \mathcal{N}^{\pi}_v}
        \mathrm{MLP}(\mathbf{h}_u) + \sum_{u \in \mathcal{N}^{\pi}_{v,
        \mathrm{virtual}}} \frac{\mathrm{MLP}_{\mathrm{ve}}(\mathbf{h}_u)}
        {s_{uv}}

        \mathbf{h}_v &\leftarrow \mathrm{GRU}(\mathbf{m}_v, \mathbf{h}_v)

    for every node :math:`v` in the order :math:`\pi` of the sweep (forward,
    then backward over reversed edges), where :math:`\mathcal{N}^{\pi}_v`
    are its predecessors in the sweep, already updated in that sweep, and
    :math:`s_{uv}` is the shortest-path length of a virtual edge.
    :math:`\mathbf{m}_v = \mathbf{0}` for nodes without incoming edges; each
    node is updated once per sweep. Nodes of one topological level (see
    :class:`SweepSchedule`) do not depend on each other and are updated at
    once, which gives the same result as the node-by-node order
    (:func:`~ghnlib.nn.reference_gated_gnn.reference_gated_gnn`). Both
    sweeps share the two MLPs (:math:`\mathrm{Linear} \to \mathrm{ReLU}
    \to \mathrm{Linear}`) and the GRU cell. Where no gradient is needed,
    on the CPU with the extension built, each sweep runs as one compiled op
    instead
    (:func:`ghnlib.ops.gated_gnn_sweep`, see :meth:`uses_compiled_sweep`).

    Args:
        hidden_channels (int, optional): Size :math:`H` of the node states.
            (default: :obj:`32`)
        num_rounds (int, optional): Number of forward + backward rounds.
            (default: :obj:`1`)
        layer_norm (bool, optional): Apply :class:`torch.nn.LayerNorm` to
            the node states after each sweep. (default: :obj:`False`)
        aggr (str or Aggregation, optional): How the messages into a node
            are combined (real and virtual together); :obj:`"add"` is the
            paper's sum. (default: :obj:`"add"`)

    Shapes:
        - **input:** node states :math:`(|\mathcal{V}|, H)`,
          :class:`SweepSchedule` of the (batched) graph
        - **output:** node states :math:`(|\mathcal{V}|, H)`
    """
    def __init__(self, hidden_channels: int = 32, num_rounds: int = 1,
                 layer_norm: bool = False, aggr: Union[str, Any] = 'add'):
        super().__init__(aggr=aggr, flow='source_to_target', node_dim=0)
        if num_rounds < 1:
            raise GhnlibError(
                f'num_rounds must be at least 1 (got {num_rounds})')
        self.hidden_channels = hidden_channels
        self.num_rounds = num_rounds
        self.mlp = nn.Sequential(nn.Linear(hidden_channels, hidden_channels),
                                 nn.ReLU(),
                                 nn.Linear(hidden_channels, hidden_channels))
        self.mlp_ve = nn.Sequential(
            nn.Linear(hidden_channels, hidden_channels), nn.ReLU(),
            nn.Linear(hidden_channels, hidden_channels))
        self.gru = nn.GRUCell(hidden_channels, hidden_channels)
        self.norm = nn.LayerNorm(hidden_channels) if layer_norm else None
        self.reset_parameters()

    @property
    def layer_norm(self) -> bool:
        return self.norm is not None

    def reset_parameters(self):
        super().reset_parameters()
        for mlp in (self.mlp, self.mlp_ve):
            for layer in mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        self.gru.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, h: Tensor, schedule: SweepSchedule) -> Tensor:
        r"""Runs :obj:`num_rounds` forward and backward sweeps.

        Args:
            h (Tensor): Node states. Shape :math:`[N, H]`.
            schedule (SweepSchedule): The levels of the (batched) graph, on
                the device of :obj:`h`; a graph or batch (anything
                :meth:`SweepSchedule.from_data` reads) is also accepted and
                scheduled on the fly.

        Returns:
            The new node states, a new tensor of shape :math:`[N, H]`.
        """
        if not isinstance(schedule, SweepSchedule):
            schedule = SweepSchedule.from_data(schedule)
        if h.size(0) != schedule.num_nodes:
            raise GhnlibError(f'h has {h.size(0)} rows but the schedule '
                              f'{schedule.num_nodes} nodes: pass one state '
                              f'per node of the scheduled graph')
        for _ in range(self.num_rounds):
            for sweep in (schedule.forward, schedule.backward):
                h = self._sweep(h, sweep)
                if self.norm is not None:
                    h = self.norm(h)
        return h

    def uses_compiled_sweep(self, h: Tensor) -> bool:
        """Whether :meth:`forward` on :obj:`h` runs the compiled sweep
        (:func:`ghnlib.ops.gated_gnn_sweep`): sum aggregation, CPU float
        tensors, the extension built, and no gradient asked for. Otherwise
        it runs the level-by-level PyTorch sweep; both give the same
        states."""
        return (self.aggr in ('add', 'sum')
                and sweep_kernel_applies(h, list(self.parameters())))

    def _sweep(self, h: Tensor, sweep: Sweep) -> Tensor:
        if self.uses_compiled_sweep(h):
            return self._compiled_sweep(h, sweep)
        return self._level_sweep(h, sweep)

    def _compiled_sweep(self, h: Tensor, sweep: Sweep) -> Tensor:
        c = sweep.compressed()

        def weights(mlp):
            return [mlp[0].weight, mlp[0].bias, mlp[2].weight, mlp[2].bias]

        gru = self.gru
        # The layout comes from SweepSchedule, whose every layout passes
        # check_sweep_layout (tests/ops): no need to read it again per call.
        return gated_gnn_sweep(
            h.contiguous(), c.node_order, c.level_ptr, c.real_ptr, c.real_src,
            c.virtual_ptr, c.virtual_src, c.virtual_dist,
            weights(self.mlp), weights(self.mlp_ve),
            [gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh],
            check_layout=False)

    def _level_sweep(self, h: Tensor, sweep: Sweep) -> Tensor:
        # Updated in place level by level: the clone keeps the caller's
        # tensor intact, and autograd stays correct because every op below
        # reads ``h`` and ``out`` through ``index_select``, which saves only
        # indices. A message depends on its source only, so both MLPs run
        # once per node, right after its update, instead of once per edge
        # (virtual edges outnumber nodes by ~100x).
        h = h.clone()
        gru = self.gru
        size, hidden = h.size(0), self.hidden_channels
        out = h.new_zeros(size, 2 * hidden)
        for lvl in sweep.levels:
            h_level = h.index_select(0, lvl.nodes)
            if lvl.msg_index.size(1) > 0:
                m = self.propagate(lvl.msg_index, x=(out, None),
                                   size=(size, lvl.nodes.numel()),
                                   num_real=lvl.num_real,
                                   ve_dist=lvl.float_dist)
            else:
                m = torch.zeros_like(h_level)
            # Functional forms of the GRU cell and the MLPs: this loop runs
            # once per level, where module-call overhead dominates.
            h_level = torch.gru_cell(m, h_level, gru.weight_ih, gru.weight_hh,
                                     gru.bias_ih, gru.bias_hh)
            h.index_copy_(0, lvl.nodes, h_level)
            out.index_copy_(0, lvl.nodes, torch.cat(
                [_mlp(self.mlp, h_level), _mlp(self.mlp_ve, h_level)], dim=-1))
        return h

    def message(self, x_j: Tensor, num_real: int, ve_dist: Tensor) -> Tensor:
        hidden = self.hidden_channels
        if num_real == x_j.size(0):
            return x_j[:, :hidden]
        virtual = x_j[num_real:, hidden:] / ve_dist.to(x_j.dtype).unsqueeze(-1)
        if num_real == 0:
            return virtual
        return torch.cat([x_j[:num_real, :hidden], virtual])

    def __repr__(self) -> str:
        extra = ', layer_norm=True' if self.norm is not None else ''
        if not isinstance(self.aggr, str) or self.aggr not in ('add', 'sum'):
            extra += f', aggr={self.aggr!r}'
        return (f'{self.__class__.__name__}({self.hidden_channels}, '
                f'num_rounds={self.num_rounds}{extra})')
