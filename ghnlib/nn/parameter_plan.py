r"""How a GHN predicts each parameter of a graph (:func:`plan_parameters`),
and the decoding layout of a batch of graphs (:class:`BatchPlan`), built
once per batch and reused by every call on it."""
import itertools
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ghnlib.graph import RELU_LIKE, ArchGraph

__all__ = ['ParamTask', 'plan_parameters', 'activation_gain', 'BatchPlan',
           'WeightGroup', 'VECTOR_RANGES']

_NORM_OPS = frozenset({'batch_norm', 'layer_norm', 'group_norm',
                       'instance_norm'})
_WEIGHT_OPS = frozenset({'conv', 'conv_grouped', 'conv_dilated',
                         'conv_transpose', 'linear'})
# Ops an activation's gain passes through on its way back to a weight.
_TRANSPARENT_OPS = _NORM_OPS | {'bias'}

#: How decoded vectors are mapped to a parameter's range: value = a·tanh(x) + b.
VECTOR_RANGES = {
    'norm_weight': (0.5, 1.0),
    'norm_bias': (0.1, 0.0),
    'bias': (0.1, 0.0),
    'vector': (0.1, 0.0),
}


class ParamTask:
    """How one parameter tensor of a graph is predicted."""
    __slots__ = ('node', 'name', 'shape', 'view', 'kind', 'slot', 'scale',
                 'shift', 'classifier', 'crop')

    def __init__(self, node, name, shape, view, kind, slot, scale, shift,
                 classifier, crop=None):
        self.node = node
        self.name = name
        self.shape = shape
        self.view = view
        self.kind = kind
        self.slot = slot
        self.scale = scale
        self.shift = shift
        self.classifier = classifier
        self.crop = crop


def _as_view(shape: Sequence[int]) -> Tuple[int, int, int, int]:
    shape = list(shape) or [1]
    if len(shape) > 4:
        shape = shape[:3] + [int(math.prod(shape[3:]))]
    return tuple(shape + [1] * (4 - len(shape)))


def activation_gain(ops: List[str], successors: List[List[int]],
                    node: int) -> float:
    r""":math:`\beta` of a weight: 2 if a ReLU-like op follows it (through
    biases and norm layers only), 1 otherwise."""
    frontier, seen = list(successors[node]), set()
    while frontier:
        v = frontier.pop()
        if v in seen:
            continue
        seen.add(v)
        if ops[v] in RELU_LIKE:
            return 2.0
        if ops[v] in _TRANSPARENT_OPS:
            frontier.extend(successors[v])
    return 1.0


def _is_classifier(ops: List[str], successors: List[List[int]], node: int,
                   output: int) -> bool:
    frontier = list(successors[node])
    while frontier:
        v = frontier.pop()
        if v == output:
            return True
        if ops[v] == 'bias':
            frontier.extend(successors[v])
    return False


def plan_parameters(graph: ArchGraph, num_classes: int,
                    max_shape: Sequence[int] = (64, 64, 3, 3)) -> List[ParamTask]:
    r"""Decides, for every parameter of :obj:`graph`, its decoder and its
    normalisation.

    * weights (two or more dimensions): the low-rank decoder, scaled to
      unit RMS and then by :math:`\sqrt{\beta / \mathrm{fan\_in}}` (He's
      variance) with
      :math:`\mathrm{fan\_in} = \prod_{d \geq 1} s_d` and :math:`\beta` from
      :func:`activation_gain`; the last weight layer before the output
      with at most :obj:`num_classes` outputs uses the classifier basis;
      only the crop of :obj:`max_shape` that survives slicing is decoded;
    * vectors: a norm layer's weight maps to :math:`1 \pm 0.5`, biases to
      :math:`\pm 0.1` (:obj:`VECTOR_RANGES`).
    """
    ops = graph.op_names
    successors: List[List[int]] = [[] for _ in range(graph.num_nodes)]
    for u, v in graph.edge_index.t().tolist():
        successors[u].append(v)
    output = int(graph.output_index[0])
    tasks = []
    for node, (names, shapes) in enumerate(zip(graph.node_params,
                                               graph.param_shapes)):
        op = ops[node]
        for position, (name, shape) in enumerate(zip(names, shapes)):
            view = _as_view(shape)
            if len(shape) >= 2:
                fan_in = max(1, int(math.prod(shape[1:])))
                gain = activation_gain(ops, successors, node)
                classifier = (op in _WEIGHT_OPS and shape[0] <= num_classes
                              and _is_classifier(ops, successors, node, output))
                limit = ((num_classes, ) + tuple(max_shape[1:])
                         if classifier else tuple(max_shape))
                crop = tuple(min(t, m) for t, m in zip(view, limit))
                tasks.append(ParamTask(node, name, tuple(shape), view, 'weight',
                                       0, math.sqrt(gain / fan_in), 0.0,
                                       classifier, crop))
                continue
            if op in _NORM_OPS:
                kind = 'norm_weight' if position == 0 else 'norm_bias'
            elif op == 'bias':
                kind = 'bias'
            else:
                kind = 'vector'
            scale, shift = VECTOR_RANGES[kind]
            slot = 0 if kind == 'norm_weight' else 1
            tasks.append(ParamTask(node, name, tuple(shape), view, kind, slot,
                                   scale, shift, False))
    return tasks


class WeightGroup:
    r"""Weights of a batch decoded together: the same crop of
    :obj:`max_shape` and the same output basis.

    Members are ordered so that those whose real shape *is* the crop (no
    tiling) come first, in runs of equal shape, then the tiled ones.

    Attributes:
        crop (Tuple[int, int, int, int]): The decoded crop.
        classifier (bool): Whether the classifier basis is used.
        tasks (List[int]): Task ids of the members, in member order.
        index (LongTensor): Row of each member's decoder code.
        scale (Tensor): :math:`\sqrt{\beta / \mathrm{fan\_in}}` per member.
        runs (List[Tuple[int, int, Tuple[int, ...]]]): ``(start, end,
            shape)`` of the untiled members, which need no fitting.
        num_untiled (int): Members before the tiled ones.
        views (List[Tuple[int, int, int, int]]): Four-dimensional target of
            every member.
        offsets (List[int]): Where each member starts in the flat output of
            an inference call, then where the group ends.
    """
    __slots__ = ('crop', 'classifier', 'tasks', 'index', 'scale', 'runs',
                 'num_untiled', 'views', 'offsets')


class BatchPlan:
    r"""The decoding layout of a list of graphs, batched: which node codes
    each parameter reads, how weights are grouped for the decoder, and how
    vectors are gathered. Built once per batch (see
    :meth:`GraphHyperNetwork.batch_of`); every prediction on the batch then
    runs a fixed number of tensor ops per group instead of Python work per
    parameter.

    Args:
        graphs (Sequence[ArchGraph]): The graphs, in batch order.
        node_offsets (Sequence[int]): First node of each graph in the batch.
        num_classes (int): Classes of the GHN's classifier basis.
        max_shape (Sequence[int]): The decoder's :obj:`max_shape`.
        device (torch.device): Where the index tensors live.
    """
    def __init__(self, graphs: Sequence[ArchGraph], node_offsets: Sequence[int],
                 num_classes: int, max_shape: Sequence[int], device):
        key = (num_classes, tuple(max_shape))
        tasks: List[ParamTask] = []
        nodes: List[int] = []
        self.graph_tasks: List[Tuple[int, int]] = []
        for graph, offset in zip(graphs, node_offsets):
            plan = graph.__dict__.get('_ghn_plan')
            if plan is None or plan[0] != key:
                plan = (key, plan_parameters(graph, *key))
                object.__setattr__(graph, '_ghn_plan', plan)
            self.graph_tasks.append((len(tasks), len(tasks) + len(plan[1])))
            tasks.extend(plan[1])
            nodes.extend(offset + task.node for task in plan[1])
        self.names = [task.name for task in tasks]
        self.shapes = [task.shape for task in tasks]
        self.num_tasks = len(tasks)
        # Each node owning parameters is decoded once; rows[k] is its code's
        # row for task k.
        owners, rows = torch.unique(torch.tensor(nodes, dtype=torch.long),
                                    return_inverse=True)
        self.owners = owners.to(device)
        rows = rows.tolist()
        self.weight_groups = self._weight_groups(tasks, rows, device)
        self._vector_layout(tasks, rows, int(max_shape[0]), device)
        # The flat output of an inference call: the weight groups one after
        # the other, then the vectors.
        offset = 0
        for group in self.weight_groups:
            group.offsets = list(itertools.accumulate(
                (math.prod(view) for view in group.views), initial=offset))
            offset = group.offsets[-1]
        self.vector_offset = offset
        self.num_elements = offset + sum(self.vector_sizes)

    @staticmethod
    def _weight_groups(tasks, rows, device) -> List[WeightGroup]:
        members: Dict[Tuple, List[int]] = {}
        for k, task in enumerate(tasks):
            if task.kind == 'weight':
                members.setdefault((task.crop, task.classifier), []).append(k)
        groups = []
        for (crop, classifier), ids in members.items():
            untiled = sorted((k for k in ids if tasks[k].view == crop),
                             key=lambda k: tasks[k].shape)
            tiled = [k for k in ids if tasks[k].view != crop]
            group = WeightGroup()
            group.crop, group.classifier = crop, classifier
            group.tasks = untiled + tiled
            group.index = torch.tensor([rows[k] for k in group.tasks],
                                       device=device)
            # float64, cast to the GHN's dtype when used.
            group.scale = torch.tensor([tasks[k].scale for k in group.tasks],
                                       dtype=torch.float64, device=device)
            group.runs = []
            for position, k in enumerate(untiled):
                shape = tasks[k].shape
                if group.runs and group.runs[-1][2] == shape:
                    group.runs[-1] = (group.runs[-1][0], position + 1, shape)
                else:
                    group.runs.append((position, position + 1, shape))
            group.num_untiled = len(untiled)
            group.views = [tasks[k].view for k in group.tasks]
            groups.append(group)
        return groups

    def _vector_layout(self, tasks, rows, width: int, device) -> None:
        r"""Vectors are gathered in one go: element :math:`j` of a vector
        of length :math:`t` reads entry :math:`j \bmod O` of its decoded
        pair's slot (slice from the start, tile where :math:`t > O`)."""
        ids = [k for k, task in enumerate(tasks) if task.kind != 'weight']
        self.vector_tasks = ids
        self.vector_sizes = [int(math.prod(tasks[k].shape)) for k in ids]
        # A node's vectors (a norm's weight and bias) share its decoded pair.
        nodes, pair_of_task = torch.unique(
            torch.tensor([rows[k] for k in ids], dtype=torch.long),
            return_inverse=True)
        self.vector_index = nodes.to(device)
        sizes = torch.tensor(self.vector_sizes, dtype=torch.long)
        member = torch.repeat_interleave(torch.arange(len(ids)), sizes)
        starts = torch.cumsum(sizes, 0) - sizes
        position = torch.arange(int(sizes.sum())) - starts[member]
        slots = torch.tensor([tasks[k].slot for k in ids], dtype=torch.long)
        # Flat position in the [nodes, 2, O] decoded pairs (int32 where it
        # fits: one index per predicted vector element).
        source = (pair_of_task[member] * 2 * width + slots[member] * width
                  + position % width)
        if len(nodes) * 2 * width <= torch.iinfo(torch.int32).max:
            source = source.int()
        self.vector_source = source.to(device)
        # Per vector, in float64; spread over the elements once per dtype by
        # vector_affine.
        self._vector_task_affine = tuple(
            torch.tensor([getattr(tasks[k], name) for k in ids],
                         dtype=torch.float64) for name in ('scale', 'shift'))
        self._vector_affine = {}
        self._vector_device = device

    def vector_affine(self, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        r"""Per vector element, :math:`a` and :math:`b` of
        :math:`a \tanh(x) + b` in :obj:`dtype`."""
        if dtype not in self._vector_affine:
            sizes = torch.tensor(self.vector_sizes, dtype=torch.long)
            self._vector_affine[dtype] = tuple(
                torch.repeat_interleave(t, sizes).to(
                    self._vector_device, dtype)
                for t in self._vector_task_affine)
        return self._vector_affine[dtype]

    def assemble(self, values: List[Tensor]) -> List[Dict[str, Tensor]]:
        """One ``{name: tensor}`` dict per graph from the tensors of all
        tasks, in task order."""
        return [dict(zip(self.names[start:end], values[start:end]))
                for start, end in self.graph_tasks]
