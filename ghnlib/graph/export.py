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
from ghnlib.graph.vocabulary import _adaptive, _conv_op, _mean_op, _same

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


_ATEN_OPS = {
    'conv1d': _conv, 'conv2d': _conv, 'conv3d': _conv,
    'convolution': _convolution,
    'conv_transpose1d': _same('conv_transpose'),
    'conv_transpose2d': _same('conv_transpose'),
    'conv_transpose3d': _same('conv_transpose'),
    'linear': _same('linear'), 'addmm': _same('linear'),
    'mm': _same('matmul'), 'bmm': _same('matmul'),
    'matmul': _same('matmul'), 'einsum': _same('matmul'),
    'batch_norm': _same('batch_norm'),
    'native_batch_norm': _same('batch_norm'),
    '_native_batch_norm_legit': _same('batch_norm'),
    '_native_batch_norm_legit_no_training': _same('batch_norm'),
    '_native_batch_norm_legit_functional': _same('batch_norm'),
    'layer_norm': _same('layer_norm'),
    'native_layer_norm': _same('layer_norm'),
    'rms_norm': _same('layer_norm'),
    'group_norm': _same('group_norm'),
    'native_group_norm': _same('group_norm'),
    'instance_norm': _same('instance_norm'),
    'embedding': _same('embedding'),
    'add': _same('sum'), 'sub': _same('sum'), 'rsub': _same('sum'),
    'mul': _same('multiply'), 'div': _same('multiply'),
    'cat': _same('concat'), 'concat': _same('concat'),
    'stack': _same('concat'),
    'softmax': _same('softmax'), '_softmax': _same('softmax'),
    'log_softmax': _same('softmax'), '_log_softmax': _same('softmax'),
    'scaled_dot_product_attention': _same('attention'),
    'relu': _same('relu'), 'relu6': _same('relu'),
    'leaky_relu': _same('relu'), 'hardtanh': _same('relu'),
    'prelu': _same('relu'), '_prelu_kernel': _same('relu'),
    'gelu': _same('gelu'), 'silu': _same('silu'),
    'sigmoid': _same('sigmoid'), 'tanh': _same('tanh'),
    'hardswish': _same('hardswish'), 'hardsigmoid': _same('hardsigmoid'),
    'elu': _same('elu'), 'selu': _same('elu'), 'celu': _same('elu'),
    'mish': _same('activation'), 'softplus': _same('activation'),
    'max_pool1d': _same('max_pool'), 'max_pool2d': _same('max_pool'),
    'max_pool3d': _same('max_pool'),
    'max_pool2d_with_indices': _same('max_pool'),
    'max_pool3d_with_indices': _same('max_pool'),
    'avg_pool1d': _same('avg_pool'), 'avg_pool2d': _same('avg_pool'),
    'avg_pool3d': _same('avg_pool'),
    'adaptive_avg_pool1d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_avg_pool2d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    '_adaptive_avg_pool2d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_avg_pool3d': _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    'adaptive_max_pool1d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'adaptive_max_pool2d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'adaptive_max_pool3d': _adaptive('global_max_pool', 'adaptive_max_pool'),
    'mean': _mean_op,
    'upsample_nearest2d': _same('upsample'),
    'upsample_bilinear2d': _same('upsample'),
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

