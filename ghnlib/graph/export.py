r"""The :func:`torch.export` front end: the fallback of
:func:`ghnlib.graph.to_graph` for models torch.fx cannot trace.

:func:`torch.export.export` traces with fake tensors through the dispatcher
and captures value-dependent branches written with :func:`torch.cond` (both
branches become part of the graph). Its graph holds ATen ops, mapped here to
the same op vocabulary as the fx front end; parameter names come from the
export signature, so they are the names of ``model.named_parameters()``.
"""
import operator
from typing import Any, Dict, Optional, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ghnlib.graph.fx_builder import FxGraphBuilder
from ghnlib.graph.recorder import NO_SOURCES, Sources, merge_sources
from ghnlib.graph.vocabulary import _all_ones, _conv_op, _mean_op

__all__ = ['ExportGraphBuilder', 'export_program']


def _conv(args, kwargs, ndim) -> str:
    dilation = args[5] if len(args) > 5 else kwargs.get('dilation', 1)
    groups = args[6] if len(args) > 6 else kwargs.get('groups', 1)
    dilation = dilation if isinstance(dilation, (tuple, list)) else (dilation, )
    return _conv_op(groups, dilation, False)


def _convolution(args, kwargs, ndim) -> str:
    # aten.convolution(input, weight, bias, stride, padding, dilation,
    #                  transposed, output_padding, groups)
    return _conv_op(args[8], args[5], args[6])


def _adaptive(global_op: str, local_op: str):
    return lambda args, kwargs, ndim: (global_op if _all_ones(args[1])
                                       else local_op)


def _fixed(op: str):
    return lambda args, kwargs, ndim: op


_ATEN_OPS = {
    'conv1d': _conv, 'conv2d': _conv, 'conv3d': _conv,
    'convolution': _convolution,
    'conv_transpose1d': _fixed('conv_transpose'),
    'conv_transpose2d': _fixed('conv_transpose'),
    'conv_transpose3d': _fixed('conv_transpose'),
    'linear': _fixed('linear'), 'addmm': _fixed('linear'),
    'mm': _fixed('matmul'), 'bmm': _fixed('matmul'),
    'matmul': _fixed('matmul'), 'einsum': _fixed('matmul'),
    'batch_norm': _fixed('batch_norm'),
    'native_batch_norm': _fixed('batch_norm'),
    '_native_batch_norm_legit': _fixed('batch_norm'),
    '_native_batch_norm_legit_no_training': _fixed('batch_norm'),
    '_native_batch_norm_legit_functional': _fixed('batch_norm'),
    'layer_norm': _fixed('layer_norm'),
    'native_layer_norm': _fixed('layer_norm'),
    'rms_norm': _fixed('layer_norm'),
    'group_norm': _fixed('group_norm'),
    'native_group_norm': _fixed('group_norm'),
    'instance_norm': _fixed('instance_norm'),
    'embedding': _fixed('embedding'),
    'add': _fixed('sum'), 'sub': _fixed('sum'), 'rsub': _fixed('sum'),
    'mul': _fixed('multiply'), 'div': _fixed('multiply'),
    'cat': _fixed('concat'), 'concat': _fixed('concat'),
    'stack': _fixed('concat'),
    'softmax': _fixed('softmax'), '_softmax': _fixed('softmax'),
    'log_softmax': _fixed('softmax'), '_log_softmax': _fixed('softmax'),
    'scaled_dot_product_attention': _fixed('attention'),
    'relu': _fixed('relu'), 'relu6': _fixed('relu'),
    'leaky_relu': _fixed('relu'), 'hardtanh': _fixed('relu'),
    'prelu': _fixed('relu'), '_prelu_kernel': _fixed('relu'),
    'gelu': _fixed('gelu'), 'silu': _fixed('silu'),
    'sigmoid': _fixed('sigmoid'), 'tanh': _fixed('tanh'),
    'hardswish': _fixed('hardswish'), 'hardsigmoid': _fixed('hardsigmoid'),
    'elu': _fixed('elu'), 'selu': _fixed('elu'), 'celu': _fixed('elu'),
    'mish': _fixed('activation'), 'softplus': _fixed('activation'),
    'max_pool1d': _fixed('max_pool'), 'max_pool2d': _fixed('max_pool'),
    'max_pool3d': _fixed('max_pool'),
    'max_pool2d_with_indices': _fixed('max_pool'),
    'max_pool3d_with_indices': _fixed('max_pool'),
    'avg_pool1d': _fixed('avg_pool'), 'avg_pool2d': _fixed('avg_pool'),
    'avg_pool3d': _fixed('avg_pool'),
    'adaptive_avg_pool1d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_avg_pool2d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    '_adaptive_avg_pool2d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_avg_pool3d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_max_pool1d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'adaptive_max_pool2d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'adaptive_max_pool3d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'mean': _mean_op,
    'upsample_nearest2d': _fixed('upsample'),
    'upsample_bilinear2d': _fixed('upsample'),
}

_ATEN_SHAPE_ONLY = frozenset({
    'view', 'reshape', '_unsafe_view', 'permute', 'transpose', 't',
    'flatten', 'unflatten', 'expand', 'expand_as', 'contiguous', 'clone',
    '_to_copy', 'to', 'alias', 'detach', 'slice', 'select', 'squeeze',
    'unsqueeze', 'split', 'split_with_sizes', 'chunk', 'unbind', 'narrow',
    'dropout', 'native_dropout', 'feature_dropout', 'alpha_dropout', 'pad',
    'constant_pad_nd', 'roll', 'flip', 'movedim', 'channel_shuffle',
    'pixel_shuffle', 'pixel_unshuffle', 'lift_fresh_copy', 'index',
})

# Where the bias of a weight layer sits among the ATen op's arguments.
_BIAS_AT = {'conv1d': 2, 'conv2d': 2, 'conv3d': 2, 'convolution': 2,
            'conv_transpose1d': 2, 'conv_transpose2d': 2,
            'conv_transpose3d': 2, 'linear': 2, 'addmm': 0}


def _aten_name(target: Any) -> Optional[str]:
    packet = getattr(target, 'overloadpacket', None)
    if packet is None:
        return None
    name = packet.__name__
    # In-place variants (`add_`) mean the same op.
    return name[:-1] if name.endswith('_') and not name.startswith('_') else name


class ExportGraphBuilder(FxGraphBuilder):
    """Records the nodes of an exported program's ATen graph."""
    def __init__(self, params: Dict[str, nn.Parameter],
                 program: torch.export.ExportedProgram):
        super().__init__(params)
        signature = program.graph_signature
        self.placeholder_params = dict(signature.inputs_to_parameters)
        self.user_inputs = set(signature.user_inputs)
        self.user_outputs = [
            i for i, spec in enumerate(signature.output_specs)
            if spec.kind == torch.export.graph_signature.OutputKind.USER_OUTPUT
        ]
        self.program = program
        self.scope = ''

    def build(self) -> None:
        self.visit_graph(self.program.graph_module, top=True)

    def visit_graph(self, module: fx.GraphModule, top: bool,
                    operands: Tuple[Sources, ...] = ()) -> Sources:
        placeholders = iter(operands)
        for node in module.graph.nodes:
            node.meta['value'] = node.meta.get('val')
            if node.op == 'placeholder' and not top:
                self.refs[node] = next(placeholders, NO_SOURCES)
            elif node.op == 'output' and not top:
                return self.ref_of(node.args)
            elif node.op == 'placeholder':
                self.visit_placeholder(node)
            elif node.op == 'output':
                outputs = node.args[0]
                ref = self.ref_of([outputs[i] for i in self.user_outputs])
                self.output = self.add_node('output', 'output', ref.nodes,
                                            ref.params)
            elif node.op == 'call_function':
                self.visit_function(node, module)
        return NO_SOURCES

    def visit_placeholder(self, node: fx.Node) -> None:
        name = self.placeholder_params.get(node.target)
        if name is not None:
            self.reached.add(name)
            self.refs[node] = Sources((), (name, ))
        elif node.target in self.user_inputs:
            index = self.add_node('input', node.target, (), ())
            self.inputs.append(index)
            self.refs[node] = Sources((index, ))

    def visit_function(self, node: fx.Node, module: fx.GraphModule) -> None:
        if node.target is torch.ops.higher_order.cond:
            # Both branches stay in the graph; the result depends on each,
            # and on the predicate.
            predicate, true_branch, false_branch, operands = node.args
            operand_refs = tuple(self.ref_of(o) for o in operands)
            results = [self.ref_of(predicate)]
            outer = self.scope
            for branch in (true_branch, false_branch):
                self.scope = f'{outer}{branch.target}/'
                results.append(self.visit_graph(
                    getattr(module, branch.target), False, operand_refs))
            self.scope = outer
            self.refs[node] = merge_sources(results)
            return
        if node.target is operator.getitem:
            self.refs[node] = self.ref_of(node.args[0])
            return
        value = node.meta.get('value')
        if value is not None and not isinstance(value, (torch.Tensor, tuple, list)):
            return  # symbolic sizes and other non-data values
        self.visit_call(node)

    def label(self, node: fx.Node, name: str) -> str:
        return f'{self.scope}{node.name} ({name})'

    def classify(self, node: fx.Node):
        name = _aten_name(node.target)
        if name is None:
            return 'generic', str(node.target), None
        if name in _ATEN_SHAPE_ONLY:
            return None
        resolve = _ATEN_OPS.get(name)
        first = node.args[0] if node.args else None
        value = first.meta.get('val') if isinstance(first, fx.Node) else None
        ndim = value.dim() if isinstance(value, torch.Tensor) else None
        op = resolve(node.args, node.kwargs, ndim) if resolve else 'generic'
        bias = None
        if name in _BIAS_AT and len(node.args) > _BIAS_AT[name]:
            bias = node.args[_BIAS_AT[name]]
        return op, name, bias


def export_program(model: nn.Module, inputs: Dict[str, Any],
                   training: bool) -> torch.export.ExportedProgram:
    r"""Exports :obj:`model` (non-strict) on example inputs.

    Args:
        model (torch.nn.Module): The model.
        inputs (Dict[str, Any]): ``forward``'s inputs by name; ``meta``
            tensors become zeros on the model's device, since export runs
            the Python code on fake copies of real tensors.
        training (bool): Export the training-mode or the eval-mode forward.
    """
    device = next((p.device for p in model.parameters()), torch.device('cpu'))

    def real(value):
        if isinstance(value, torch.Tensor) and value.device.type == 'meta':
            return torch.zeros(value.shape, dtype=value.dtype, device=device)
        return value

    kwargs = {name: real(value) for name, value in inputs.items()}
    was_training = model.training
    model.train(training)
    try:
        return torch.export.export(model, (), kwargs, strict=False)
    finally:
        model.train(was_training)

