r"""How a GHN predicts each parameter of a graph (:func:`plan_parameters`):
which decoder, which normalisation."""
import math
from typing import List, Sequence, Tuple

from ghnlib.graph import RELU_LIKE, ArchGraph
from ghnlib.graph.vocabulary import NORM_OPS, WEIGHT_OPS

__all__ = ['ParamTask', 'plan_parameters', 'activation_gain',
           'VECTOR_RANGES']

# Ops an activation's gain passes through on its way back to a weight.
_TRANSPARENT_OPS = NORM_OPS | {'bias'}

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
                classifier = (op in WEIGHT_OPS and shape[0] <= num_classes
                              and _is_classifier(ops, successors, node, output))
                limit = ((num_classes, ) + tuple(max_shape[1:])
                         if classifier else tuple(max_shape))
                crop = tuple(min(t, m) for t, m in zip(view, limit))
                tasks.append(ParamTask(node, name, tuple(shape), view, 'weight',
                                       0, math.sqrt(gain / fan_in), 0.0,
                                       classifier, crop))
                continue
            if op in NORM_OPS:
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
