r"""Walks a traced :class:`torch.fx.Graph` and records the graph nodes."""
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ghnlib.graph.recorder import (NO_SOURCES, GraphRecorder, Sources,
                                   merge_sources)
from ghnlib.graph.vocabulary import (function_op, is_shape_only_function,
                                     is_shape_only_method,
                                     is_shape_only_module, method_op,
                                     module_node_layout, module_op)

__all__ = ['FxGraphBuilder']

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


class FxGraphBuilder(GraphRecorder):
    """Records the nodes of a traced graph; :meth:`visit` each fx node in
    order."""
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

    def classify(self, node: fx.Node) -> Optional[Tuple[str, str, Any]]:
        """``(op, readable name, the bias argument or None)`` of a traced
        call, or :obj:`None` for a shape-only call."""
        target = node.target
        first = node.args[0] if node.args else None
        first_value = first.meta.get('value') if isinstance(first, fx.Node) else None
        ndim = first_value.dim() if isinstance(first_value, torch.Tensor) else None
        if node.op == 'call_function':
            if is_shape_only_function(target):
                return None
            op = function_op(target, node.args, node.kwargs, ndim)
            name = getattr(target, '__name__', str(target))
        else:
            if is_shape_only_method(target):
                return None
            op = method_op(target, node.args[1:], node.kwargs, ndim)
            name = target
        bias = None
        if op in _BIAS_AT:
            at = _BIAS_AT[op]
            bias = node.args[at] if len(node.args) > at else node.kwargs.get('bias')
        return op, name, bias

    def label(self, node: fx.Node, name: str) -> str:
        return f'{node.name} ({name})'

    def visit_call(self, node: fx.Node) -> None:
        ref = self.ref_of((node.args, node.kwargs))
        # Ops on learned tensors alone are part of how those tensors are
        # parametrised; shape-only ops are contracted.
        kind = self.classify(node) if ref.nodes else None
        if kind is None:
            self.refs[node] = ref
            return
        op, name, bias_arg = kind
        params = ref.params
        bias: Tuple[str, ...] = ()
        if params and isinstance(bias_arg, fx.Node):
            bias = self.refs.get(bias_arg, NO_SOURCES).params
            params = tuple(p for p in params if p not in bias)
        elif params:
            op = _PARAMETRISED_OPS.get(op, op)
        label = self.label(node, name)
        index = self.add_node(op, label, ref.nodes, params)
        if bias:
            index = self.add_node('bias', label, (index, ), bias)
        self.refs[node] = Sources((index, ))
