r"""``nn.Module`` → :class:`ArchGraph`, through a shape-propagating fx trace."""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ghnlib.errors import GraphConversionError
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.recorder import (NO_SOURCES, GraphRecorder, Sources,
                                   merge_sources)
from ghnlib.graph.tracer import trace
from ghnlib.graph.vocabulary import (function_op, is_shape_only_function,
                                     is_shape_only_method,
                                     is_shape_only_module, method_op,
                                     module_node_layout, module_op)

__all__ = ['to_graph', 'DEFAULT_VE_CUTOFF']

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


def _holds_tensor(value: Any) -> bool:
    if value is None or isinstance(value, torch.Tensor):
        return True  # None: the shape is unknown, keep it as data.
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return False


class _Builder(GraphRecorder):
    def __init__(self, params: Dict[str, nn.Parameter]):
        super().__init__()
        self.params = params
        # Tied parameters have several paths; named_parameters() keeps one.
        self.canonical = {id(p): name for name, p in params.items()}
        self.refs: Dict[fx.Node, Sources] = {}

    def ref_of(self, arg: Any) -> Sources:
        if type(arg) is fx.Node:
            return self.refs.get(arg, NO_SOURCES)
        refs: List[Sources] = []

        def collect(a):
            if isinstance(a, fx.Node):
                refs.append(self.refs.get(a, NO_SOURCES))
            elif isinstance(a, (tuple, list)):
                for item in a:
                    collect(item)
            elif isinstance(a, dict):
                for item in a.values():
                    collect(item)
            elif isinstance(a, slice):
                collect((a.start, a.stop, a.step))

        collect(arg)
        return refs[0] if len(refs) == 1 else merge_sources(refs)

    def visit(self, node: fx.Node) -> None:
        if node.op == 'placeholder':
            value = node.meta.get('value')
            if _holds_tensor(value):
                index = self.add_node('input', node.target, (), ())
                self.inputs.append(index)
                self.refs[node] = Sources((index, ))
            return
        if node.op == 'get_attr':
            if node.target in self.params:
                self.reached.add(node.target)
                self.refs[node] = Sources((), (node.target, ))
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
            self.refs[node] = Sources((), ref.params + tuple(own))
            return
        preds = ref.nodes
        carried = ref.params
        for op, params in layout:
            index = self.add_node(op, node.target, preds, list(carried) + params)
            preds, carried = (index, ), ()
        self.refs[node] = Sources(preds)

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
                bias = self.refs.get(bias_arg, NO_SOURCES).params
                params = tuple(p for p in params if p not in bias)
        elif params:
            op = _PARAMETRISED_OPS.get(op, op)
        index = self.add_node(op, f'{node.name} ({name})', ref.nodes, params)
        if bias:
            index = self.add_node('bias', f'{node.name} ({name})', (index, ), bias)
        self.refs[node] = Sources((index, ))


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
        reason = builder.unplaced_reason(name)
        if reason is None or not param.requires_grad:
            continue
        if reason == 'not used':
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

    shapes = {name: tuple(p.shape) for name, p in builder.params.items()}
    return builder.to_arch_graph(shapes, ve_cutoff, unsupported, opaque,
                                 sorted(tracer.shape_failures.items()))
