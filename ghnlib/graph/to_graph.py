r"""``nn.Module`` → :class:`ArchGraph`, through a shape-propagating fx trace."""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ghnlib.errors import GraphConversionError
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.tracer import trace
from ghnlib.graph.virtual_edges import virtual_edges
from ghnlib.graph.vocabulary import (OP_INDEX, VOCABULARY_VERSION,
                                     function_op, is_shape_only_function,
                                     is_shape_only_method,
                                     is_shape_only_module, method_op,
                                     module_node_layout, module_op)

__all__ = ['to_graph', 'DEFAULT_VE_CUTOFF', 'node_shape']

#: Longest shortest-path kept as a virtual edge (GHN-2's :math:`s_{\max}`).
DEFAULT_VE_CUTOFF = 50

# A traced learned tensor that meets activations in one of these ops
# becomes that op's parameter: the op is renamed to say what the tensor is.
_PARAMETRISED_OPS = {
    'sum': 'pos_embedding',
    'concat': 'class_token',
    'multiply': 'layer_scale',
}
_BIAS_AT = {'conv': 2, 'conv_grouped': 2, 'conv_dilated': 2, 'linear': 2,
            'conv_transpose': 2}


class _Ref:
    """What a traced value derives from: graph nodes and not-yet-placed
    parameters (a learned tensor, or a computation on learned tensors only)."""
    __slots__ = ('nodes', 'params')

    def __init__(self, nodes: Tuple[int, ...] = (), params: Tuple[str, ...] = ()):
        self.nodes = nodes
        self.params = params


_EMPTY = _Ref()


def _merge(refs: Iterable[_Ref]) -> _Ref:
    nodes: Dict[int, None] = {}
    params: Dict[str, None] = {}
    for ref in refs:
        nodes.update(dict.fromkeys(ref.nodes))
        params.update(dict.fromkeys(ref.params))
    return _Ref(tuple(nodes), tuple(params))


def _holds_tensor(value: Any) -> bool:
    if value is None or isinstance(value, torch.Tensor):
        return True  # None: the shape is unknown, keep it as data.
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return False


def node_shape(shape: Sequence[int]) -> List[int]:
    """A parameter shape as 4 numbers: padded with ones, or the trailing
    dimensions merged when it has more than four."""
    shape = list(shape)
    if len(shape) > 4:
        shape = shape[:3] + [int(torch.Size(shape[3:]).numel())]
    return shape + [1] * (4 - len(shape))


class _Builder:
    def __init__(self, params: Dict[str, nn.Parameter]):
        self.params = params
        # Tied parameters have several paths; named_parameters() keeps one.
        self.canonical = {id(p): name for name, p in params.items()}
        self.ops: List[int] = []
        self.names: List[str] = []
        self.node_params: List[List[str]] = []
        self.preds: List[Tuple[int, ...]] = []
        self.owned: Dict[str, int] = {}
        self.refs: Dict[fx.Node, _Ref] = {}
        self.inputs: List[int] = []
        self.reached: set = set()
        self.output: Optional[int] = None

    def add_node(self, op: str, name: str, preds: Sequence[int],
                 params: Sequence[str]) -> int:
        index = len(self.ops)
        fresh = [p for p in params if p not in self.owned]
        for p in fresh:
            self.owned[p] = index
        self.ops.append(OP_INDEX[op])
        self.names.append(name)
        self.node_params.append(fresh)
        self.preds.append(tuple(preds))
        return index

    def ref_of(self, arg: Any) -> _Ref:
        if type(arg) is fx.Node:
            return self.refs.get(arg, _EMPTY)
        refs: List[_Ref] = []

        def collect(a):
            if isinstance(a, fx.Node):
                refs.append(self.refs.get(a, _EMPTY))
            elif isinstance(a, (tuple, list)):
                for item in a:
                    collect(item)
            elif isinstance(a, dict):
                for item in a.values():
                    collect(item)
            elif isinstance(a, slice):
                collect((a.start, a.stop, a.step))

        collect(arg)
        return refs[0] if len(refs) == 1 else _merge(refs)

    def visit(self, node: fx.Node) -> None:
        if node.op == 'placeholder':
            value = node.meta.get('value')
            if _holds_tensor(value):
                index = self.add_node('input', node.target, (), ())
                self.inputs.append(index)
                self.refs[node] = _Ref((index, ))
            return
        if node.op == 'get_attr':
            if node.target in self.params:
                self.reached.add(node.target)
                self.refs[node] = _Ref((), (node.target, ))
            return
        if node.op == 'output':
            ref = self.ref_of(node.args)
            self.output = self.add_node('output', 'output', ref.nodes,
                                        ref.params)
            return
        if not _holds_tensor(node.meta.get('value')):
            return  # Python scalars and shapes: not data flow.
        if node.op == 'call_module':
            self.visit_module(node)
        else:
            self.visit_call(node)

    def visit_module(self, node: fx.Node) -> None:
        module = node.meta['module']
        ref = (self.ref_of(node.args[0]) if len(node.args) == 1
               and not node.kwargs else self.ref_of((node.args, node.kwargs)))
        if is_shape_only_module(module):
            self.refs[node] = ref
            return
        layout = [(op, [self.canonical[id(module.get_parameter(p))] for p in params])
                  for op, params in module_node_layout(module, module_op(module))]
        if not ref.nodes:
            # Applied to constants only (e.g. an MLP producing a position
            # bias): its parameters travel on to the op that meets data.
            own = [p for _, params in layout for p in params]
            self.refs[node] = _Ref((), ref.params + tuple(own))
            return
        preds = ref.nodes
        carried = ref.params
        for op, params in layout:
            index = self.add_node(op, node.target, preds, list(carried) + params)
            preds, carried = (index, ), ()
        self.refs[node] = _Ref(preds)

    def visit_call(self, node: fx.Node) -> None:
        target = node.target
        ref = self.ref_of((node.args, node.kwargs))
        if node.op == 'call_function':
            shape_only = is_shape_only_function(target)
        else:
            shape_only = is_shape_only_method(target)
        if shape_only or not ref.nodes:
            # Shape-only ops are contracted; ops on learned tensors alone
            # are part of how those tensors are parametrised.
            self.refs[node] = ref
            return
        first = node.args[0] if node.args else None
        first_value = first.meta.get('value') if isinstance(first, fx.Node) else None
        ndim = first_value.dim() if isinstance(first_value, torch.Tensor) else None
        if node.op == 'call_function':
            op = function_op(target, node.args, node.kwargs, ndim)
            name = getattr(target, '__name__', str(target))
        else:
            op = method_op(target, node.args[1:], node.kwargs, ndim)
            name = target
        params = ref.params
        bias: Tuple[str, ...] = ()
        if params and op in _BIAS_AT:
            at = _BIAS_AT[op]
            bias_arg = (node.args[at] if len(node.args) > at else
                        node.kwargs.get('bias'))
            if isinstance(bias_arg, fx.Node):
                bias = self.refs.get(bias_arg, _EMPTY).params
                params = tuple(p for p in params if p not in bias)
        elif params:
            op = _PARAMETRISED_OPS.get(op, op)
        index = self.add_node(op, f'{node.name} ({name})', ref.nodes, params)
        if bias:
            index = self.add_node('bias', f'{node.name} ({name})', (index, ), bias)
        self.refs[node] = _Ref((index, ))


def to_graph(model: nn.Module, example_input: Any = None, *,
             input_shape: Sequence[int] = (1, 3, 32, 32), strict: bool = True,
             ve_cutoff: int = DEFAULT_VE_CUTOFF,
             leaf_modules: Iterable[str] = (),
             training: bool = True) -> ArchGraph:
    r"""Converts a PyTorch model into its computational graph.

    The model is traced with :mod:`torch.fx` while shapes propagate on
    ``meta`` tensors, so no real computation runs and the cost does not grow
    with the input resolution. Every call becomes a node of the op
    vocabulary (:obj:`ghnlib.graph.OPS`), shape-only ops are contracted, and
    every parameter is owned by exactly one node.

    Args:
        model (torch.nn.Module): The model to convert.
        example_input (Any, optional): What ``model.forward`` takes: a tensor,
            a tuple of positional inputs or a dict of keyword inputs; real or
            ``meta`` tensors (only shapes are read). (default: :obj:`None`,
            a tensor of :obj:`input_shape`)
        input_shape (Sequence[int], optional): Shape of the single input
            when :obj:`example_input` is not given.
            (default: :obj:`(1, 3, 32, 32)`)
        strict (bool, optional): Raise :class:`GraphConversionError` if any
            trainable parameter cannot be placed; otherwise return the
            partial graph with :attr:`ArchGraph.unsupported` filled in.
            (default: :obj:`True`)
        ve_cutoff (int, optional): Longest shortest path :math:`s_{\max}`
            kept as a virtual edge; values below 2 disable virtual edges.
            (default: :obj:`50`)
        leaf_modules (Iterable[str], optional): Qualified names of
            submodules to keep as single opaque nodes. (default: :obj:`()`)
        training (bool, optional): Trace the training-mode forward, so that
            branches used only in training (auxiliary classifiers) are part
            of the graph. The model's mode is restored afterwards.
            (default: :obj:`True`)

    Returns:
        :class:`ArchGraph`
    """
    if not isinstance(model, nn.Module):
        raise GraphConversionError(
            '', f'expected a torch.nn.Module, got {type(model).__name__}; '
            'for an ONNX file use ghnlib.graph.from_onnx')
    if example_input is None:
        example_input = torch.empty(tuple(input_shape), device='meta')
    fx_graph, tracer, opaque = trace(model, example_input, leaf_modules,
                                     training)

    builder = _Builder(tracer.parameters)
    for fx_node in fx_graph.nodes:
        builder.visit(fx_node)

    unsupported = []
    for name, param in builder.params.items():
        if name in builder.owned:
            continue
        if not param.requires_grad:
            continue
        if name in builder.reached:
            reason = 'used only in computations that never meet the input data'
        else:
            mode = 'training' if training else 'eval'
            reason = f'not used by the traced forward ({mode} mode)'
        unsupported.append((name, reason))
    if unsupported and strict:
        name, reason = unsupported[0]
        module = name.rpartition('.')[0]
        more = f' (and {len(unsupported) - 1} more)' if len(unsupported) > 1 else ''
        raise GraphConversionError(
            module, f"parameter '{name}' {reason}{more}; pass strict=False to "
            'get the partial graph with graph.unsupported listing them',
            type(model).__name__)

    num_nodes = len(builder.ops)
    src = [u for v, preds in enumerate(builder.preds) for u in preds]
    dst = [v for v, preds in enumerate(builder.preds) for _ in preds]
    edge_index = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
    ve_index, ve_dist = virtual_edges(edge_index, num_nodes, ve_cutoff)

    param_shapes = [[tuple(builder.params[p].shape) for p in params]
                    for params in builder.node_params]
    shapes = [node_shape(s[0]) if s else [0, 0, 0, 0] for s in param_shapes]
    return ArchGraph(
        op=torch.tensor(builder.ops, dtype=torch.long),
        node_shape=torch.tensor(shapes, dtype=torch.long).view(-1, 4),
        edge_index=edge_index,
        virtual_edge_index=ve_index,
        virtual_edge_dist=ve_dist,
        input_index=torch.tensor(builder.inputs, dtype=torch.long),
        output_index=torch.tensor([builder.output], dtype=torch.long),
        node_names=builder.names,
        node_params=builder.node_params,
        param_shapes=param_shapes,
        unsupported=unsupported,
        opaque=opaque,
        shape_failures=sorted(tracer.shape_failures.items()),
        vocabulary_version=VOCABULARY_VERSION,
        num_nodes=num_nodes,
    )
