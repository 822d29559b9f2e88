r"""The gated graph neural network of GHN-2: forward and backward sweeps of a
GRU over the topological order of an architecture graph, computed one
topological level at a time."""
import functools
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from ghnlib.ops.gated_gnn_sweep import gated_gnn_sweep, sweep_kernel_applies

__all__ = ['GatedGNN', 'SweepSchedule', 'SweepLevel', 'Sweep',
           'CompressedSweep',
           'reference_gated_gnn', 'reference_adjacency']


@dataclass
class SweepLevel:
    r"""The nodes of one topological level and the edges into them.

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

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'SweepLevel':
        """The level on another device."""
        return SweepLevel(self.nodes.to(device, non_blocking=non_blocking),
                          self.msg_index.to(device, non_blocking=non_blocking),
                          self.num_real,
                          self.virtual_edge_dist.to(
                              device, non_blocking=non_blocking),
                          self._dist.to(device, non_blocking=non_blocking))


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

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'CompressedSweep':
        """The arrays on another device."""
        return CompressedSweep(*(
            getattr(self, name).to(device, non_blocking=non_blocking)
            for name in ('node_order', 'level_ptr', 'real_ptr', 'real_src',
                         'virtual_ptr', 'virtual_src', 'virtual_dist')))


class Sweep:
    r"""One sweep (forward or backward) split into topological levels.

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
        return self._compressed.level_ptr.numel() - 1

    def compressed(self) -> CompressedSweep:
        """The sweep as one node order and per-node in-edge lists, the
        layout of the compiled sweep."""
        return self._compressed

    @property
    def levels(self) -> List[SweepLevel]:
        if self._levels is None:
            self._levels = _levels_of(self._compressed)
        return self._levels

    def to(self, device: Union[str, torch.device],
           non_blocking: bool = False) -> 'Sweep':
        """The sweep on another device."""
        return Sweep(self.level.to(device, non_blocking=non_blocking),
                     self._compressed.to(device, non_blocking))


def _levels_of(c: CompressedSweep) -> List[SweepLevel]:
    """Per-level tensors of a compressed sweep: each level's nodes and the
    edges into it, real ones first, targets as positions within the
    level."""
    device = c.node_order.device
    level_ptr = c.level_ptr.tolist()
    num_nodes = c.node_order.numel()
    start_of = torch.repeat_interleave(
        c.level_ptr[:-1], c.level_ptr[1:] - c.level_ptr[:-1]).to(device)

    def local_targets(ptr):
        position = torch.repeat_interleave(
            torch.arange(num_nodes, device=device), ptr[1:] - ptr[:-1])
        return position - start_of[position]

    real_local = local_targets(c.real_ptr)
    virtual_local = local_targets(c.virtual_ptr)
    real_bounds = c.real_ptr[c.level_ptr].tolist()
    virtual_bounds = c.virtual_ptr[c.level_ptr].tolist()
    dtype = torch.get_default_dtype()
    levels = []
    for lvl in range(len(level_ptr) - 1):
        r0, r1 = real_bounds[lvl], real_bounds[lvl + 1]
        v0, v1 = virtual_bounds[lvl], virtual_bounds[lvl + 1]
        msg_index = torch.cat([
            torch.stack([c.real_src[r0:r1], real_local[r0:r1]]),
            torch.stack([c.virtual_src[v0:v1].long(), virtual_local[v0:v1]])],
            dim=1)
        dist = c.virtual_dist[v0:v1].long()
        levels.append(SweepLevel(
            c.node_order[level_ptr[lvl]:level_ptr[lvl + 1]], msg_index,
            r1 - r0, dist, dist.to(dtype)))
    return levels


def _longest_path_levels(src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    r"""Length of the longest path from any source to every node.

    Bellman-Ford-style relaxation over all edges at once,
    :math:`\ell(v) \leftarrow \max(\ell(v), \max_{(u, v)} \ell(u) + 1)`:
    after :math:`k` steps every level below :math:`k` is final, so it takes
    one vectorised step per level (a cycle never settles and is reported).
    """
    level = torch.zeros(num_nodes, dtype=torch.long, device=src.device)
    if src.numel() == 0:
        return level
    for _ in range(num_nodes):
        relaxed = level.scatter_reduce(0, dst, level[src] + 1, 'amax')
        if torch.equal(relaxed, level):
            return level
        level = relaxed
    raise ValueError('edge_index has a cycle: a sweep needs a DAG')


def _small_int_dtype(bound: int) -> torch.dtype:
    """The narrowest signed integer type holding ``[0, bound)``: sorting
    narrow keys is several times faster than sorting ``int64``."""
    if bound <= torch.iinfo(torch.int16).max:
        return torch.int16
    if bound <= torch.iinfo(torch.int32).max:
        return torch.int32
    return torch.long


def _length_dtype(longest: int) -> torch.dtype:
    """The narrowest integer type holding path lengths up to
    :obj:`longest`."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if longest <= torch.iinfo(dtype).max:
            return dtype
    return torch.long


def _index_dtype(bound: int) -> torch.dtype:
    """int32 where it holds every index below :obj:`bound`, else int64."""
    return torch.int32 if bound <= torch.iinfo(torch.int32).max \
        else torch.long


def _build_sweep(src: Tensor, dst: Tensor, vsrc: Tensor, vdst: Tensor,
                 vdist: Tensor, num_nodes: int) -> Sweep:
    # vsrc and vdst come in _index_dtype(num_nodes), vdist in
    # _length_dtype, and the per-edge temporaries below stay that narrow:
    # virtual edges outnumber nodes about a hundredfold.
    level = _longest_path_levels(src, dst, num_nodes)
    narrow_level = level.to(vsrc.dtype)
    if vsrc.numel() > 0 and not bool(
            (narrow_level[vsrc] < narrow_level[vdst]).all()):
        raise ValueError('a virtual edge goes against the topological order '
                         'of the data-flow edges (virtual edges must follow '
                         'directed paths)')
    num_levels = int(level.max()) + 1 if num_nodes > 0 else 0
    device = level.device
    # Nodes sorted by level, then by id; `position` is where each lands.
    node_order = torch.argsort(level.to(_small_int_dtype(num_levels)),
                               stable=True)
    level_ptr = torch.zeros(num_levels + 1, dtype=torch.long, device=device)
    torch.cumsum(torch.bincount(level, minlength=num_levels), 0,
                 out=level_ptr[1:])
    position = torch.empty(num_nodes, dtype=_small_int_dtype(num_nodes),
                           device=device)
    position[node_order] = torch.arange(num_nodes, device=device,
                                        dtype=position.dtype)

    def rows(source, target):
        # In-edges grouped by the target's position, in edge order.
        key = position[target]
        order = torch.argsort(key, stable=True)
        ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
        torch.cumsum(torch.bincount(key, minlength=num_nodes), 0, out=ptr[1:])
        return ptr, order

    real_ptr, order = rows(src, dst)
    real_src = src[order]
    virtual_ptr, order = rows(vsrc, vdst)
    return Sweep(level, CompressedSweep(node_order, level_ptr, real_ptr,
                                        real_src, virtual_ptr, vsrc[order],
                                        vdist[order]))


def _segments(starts: Tensor, lengths: Tensor, bound: int) -> Tensor:
    """The indices ``starts[s] + j`` for ``j < lengths[s]``, segment after
    segment, into an array of :obj:`bound` entries (int32 where they fit)."""
    total = int(lengths.sum())
    dtype = _index_dtype(max(bound, total))
    begin = torch.cumsum(lengths, 0) - lengths
    return (torch.repeat_interleave((starts - begin).to(dtype), lengths,
                                    output_size=total)
            + torch.arange(total, dtype=dtype))


def _concatenated_sweep(sweeps: Sequence[Sweep], sizes: Sequence[int],
                        members: Sequence[int]) -> Sweep:
    r"""The sweep of a batch whose :math:`b`-th graph is
    ``sweeps[members[b]]`` (of ``sizes[members[b]]`` nodes): level
    :math:`l` of the batch is level :math:`l` of every member in turn, so
    every array is a gather of segments of the members' arrays, with node
    ids shifted by the member's offset."""
    compressed = [sweep.compressed() for sweep in sweeps]
    device = compressed[0].node_order.device
    num_levels = max(c.level_ptr.numel() - 1 for c in compressed)
    member = torch.tensor(members, dtype=torch.long)
    size = torch.tensor(sizes, dtype=torch.long)
    node_offset = torch.cumsum(size[member], 0) - size[member]
    num_nodes = int(size[member].sum())
    narrow = _index_dtype(num_nodes)

    def padded(ptr, length):
        return torch.cat([ptr, ptr[-1:].expand(length - ptr.numel())])

    def library(values, counts_of):
        # The distinct graphs' arrays end to end, and where each starts.
        counts = torch.tensor([counts_of(c) for c in compressed])
        return torch.cat(values), torch.cumsum(counts, 0) - counts

    # Level boundaries of every distinct graph, padded to the batch's.
    level_ptr = torch.stack([padded(c.level_ptr.cpu(), num_levels + 1)
                             for c in compressed])
    node_order, node_start = library([c.node_order.cpu() for c in compressed],
                                     lambda c: c.node_order.numel())
    # Segment (l, b): the positions of level l of member b.
    first = level_ptr[member, :-1].t()
    node_lengths = (level_ptr[member, 1:].t() - first).reshape(-1)
    positions = _segments((first + node_start[member]).reshape(-1),
                          node_lengths, node_order.numel())
    shift = torch.repeat_interleave(node_offset.expand(num_levels, -1)
                                    .reshape(-1), node_lengths)

    def edges(ptr_name, values_name, dtype):
        ptrs = [getattr(c, ptr_name).cpu() for c in compressed]
        counts = torch.cat([ptr[1:] - ptr[:-1] for ptr in ptrs])[positions]
        ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=ptr[1:])
        values, edge_start = library(
            [getattr(c, values_name).cpu() for c in compressed],
            lambda c: getattr(c, values_name).numel())
        bounds = torch.stack([ptr_d[level_ptr[d]]
                              for d, ptr_d in enumerate(ptrs)])
        lo = bounds[member, :-1].t()
        lengths = (bounds[member, 1:].t() - lo).reshape(-1)
        index = _segments((lo + edge_start[member]).reshape(-1), lengths,
                          values.numel())
        edge_shift = torch.repeat_interleave(
            node_offset.expand(num_levels, -1).reshape(-1).to(dtype),
            lengths)
        return ptr, index, values, edge_shift

    real_ptr, index, real_src, edge_shift = edges('real_ptr', 'real_src',
                                                  torch.long)
    real_src = real_src[index].add_(edge_shift)
    virtual_ptr, index, virtual_src, edge_shift = edges(
        'virtual_ptr', 'virtual_src', narrow)
    virtual_src = virtual_src.to(narrow)[index].add_(edge_shift)
    lengths = functools.reduce(torch.promote_types,
                               [c.virtual_dist.dtype for c in compressed])
    virtual_dist = torch.cat([c.virtual_dist.cpu().to(lengths)
                              for c in compressed])[index]
    del index, edge_shift
    level_counts = node_lengths.view(num_levels, len(members)).sum(1)
    batch_level_ptr = torch.zeros(num_levels + 1, dtype=torch.long)
    torch.cumsum(level_counts, 0, out=batch_level_ptr[1:])
    level = torch.cat([sweeps[d].level.cpu() for d in members])
    return Sweep(level, CompressedSweep(
        node_order[positions] + shift, batch_level_ptr, real_ptr, real_src,
        virtual_ptr, virtual_src, virtual_dist)).to(device)


class SweepSchedule:
    r"""The level-by-level plan of the forward and backward sweeps of
    :class:`GatedGNN` over one (batched) graph, computed once per graph.

    The level of a node is the length of the longest path reaching it from
    a source (forward sweep) or from it to a sink (backward sweep, which
    runs over the reversed edges):

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

    Build one with :meth:`from_graph` or :meth:`from_data`.
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
            ValueError: If the edges have a cycle or a virtual edge does not
                follow the data-flow order.
        """
        edge_index = edge_index.long()
        device = edge_index.device
        if virtual_edge_index is None:
            virtual_edge_index = torch.empty(2, 0, dtype=torch.long,
                                             device=device)
            virtual_edge_dist = torch.empty(0, dtype=torch.long, device=device)
        elif virtual_edge_dist is None:
            raise ValueError('virtual_edge_index needs virtual_edge_dist')
        if num_nodes is None:
            num_nodes = int(max(edge_index.max() if edge_index.numel() else -1,
                                virtual_edge_index.max()
                                if virtual_edge_index.numel() else -1)) + 1
        virtual_edge_index = virtual_edge_index.to(
            _index_dtype(num_nodes))
        virtual_edge_dist = virtual_edge_dist.to(_length_dtype(
            int(virtual_edge_dist.max()) if virtual_edge_dist.numel() else 1))
        src, dst = edge_index
        vsrc, vdst = virtual_edge_index
        forward = _build_sweep(src, dst, vsrc, vdst, virtual_edge_dist,
                               num_nodes)
        backward = _build_sweep(dst, src, vdst, vsrc, virtual_edge_dist,
                                num_nodes)
        return cls(forward, backward, num_nodes)

    @classmethod
    def from_data(cls, data: Any) -> 'SweepSchedule':
        r"""Builds the schedule of an :class:`ArchGraph` or of a
        :class:`torch_geometric.data.Batch` of them (any object with
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
            raise ValueError('from_data_list needs at least one graph')
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
            _concatenated_sweep([s.forward for s in schedules], sizes,
                                members),
            _concatenated_sweep([s.backward for s in schedules], sizes,
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
    (:func:`reference_gated_gnn`). Both sweeps share the two MLPs
    (:math:`\mathrm{Linear} \to \mathrm{ReLU} \to \mathrm{Linear}`) and
    the GRU cell. Where no gradient is needed, on the CPU with the extension
    built, each sweep runs as one compiled op instead
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
            raise ValueError(
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
            raise ValueError(f'h has {h.size(0)} rows but the schedule '
                             f'{schedule.num_nodes} nodes')
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
        return gated_gnn_sweep(
            h.contiguous(), c.node_order, c.level_ptr, c.real_ptr, c.real_src,
            c.virtual_ptr, c.virtual_src, c.virtual_dist,
            weights(self.mlp), weights(self.mlp_ve),
            [gru.weight_ih, gru.weight_hh, gru.bias_ih, gru.bias_hh])

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
                                   ve_dist=lvl._dist)
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
        ValueError: If an edge does not go from a lower to a higher id.
    """
    real = edge_index.t().tolist()
    virtual = [] if ve_index is None else [
        (u, v, d)
        for (u, v), d in zip(ve_index.t().tolist(), ve_dist.tolist())]
    for u, v in real:
        if not u < v:
            raise ValueError('reference_gated_gnn needs edges from lower to '
                             f'higher node ids (got {u} -> {v})')
    for u, v, _ in virtual:
        if not u < v:
            raise ValueError('reference_gated_gnn needs virtual edges from '
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
        raise ValueError('reference_gated_gnn does not support '
                         f'aggr={gnn.aggr!r}')
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
