r"""The op vocabulary: which module types and functions become which graph nodes.

A trained graph hypernetwork learns one embedding per op name, so the table is
versioned (:obj:`VOCABULARY_VERSION`): a change that renumbers ops must bump
it, and graphs or hypernetworks built with another version are refused.

Every traced call falls in exactly one of three classes:

* an **op** from :obj:`OPS` (a node in the graph),
* a **shape-only** op (``view``, ``flatten``, ``permute``, dropout, …), which
  moves or reinterprets data without computing on it and is contracted: its
  inputs connect straight to its users,
* anything else parameter-free becomes a ``'generic'`` node, never dropped.
"""
import operator
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'VOCABULARY_VERSION', 'OPS', 'OP_INDEX', 'RELU_LIKE', 'op_index',
    'module_op', 'module_node_layout', 'function_op', 'method_op',
    'is_shape_only_module', 'is_shape_only_function', 'is_shape_only_method',
    'is_known_module', 'CONV_OPS', 'WEIGHT_OPS', 'NORM_OPS',
    'CHANNELWISE_OPS',
]

VOCABULARY_VERSION = 1

OPS: Tuple[str, ...] = (
    'input',
    'output',
    'conv',
    'conv_grouped',  # groups > 1, depthwise included
    'conv_dilated',
    'conv_transpose',
    'linear',
    'bias',
    'batch_norm',
    'layer_norm',
    'group_norm',
    'instance_norm',
    'embedding',
    'pos_embedding',  # a learned tensor added to activations
    'class_token',  # a learned tensor concatenated to activations
    'layer_scale',  # a learned tensor multiplied with activations
    'attention',
    'softmax',
    'sum',
    'concat',
    'multiply',
    'matmul',
    'max_pool',
    'avg_pool',
    'adaptive_max_pool',
    'adaptive_avg_pool',
    'global_max_pool',
    'global_avg_pool',
    'mean',
    'upsample',
    'relu',
    'gelu',
    'silu',
    'sigmoid',
    'tanh',
    'hardswish',
    'hardsigmoid',
    'elu',
    'activation',  # any other pointwise non-linearity
    'generic',  # a parameter-free op outside this table
    'module',  # an opaque module that could not be traced into
)

OP_INDEX: Dict[str, int] = {name: i for i, name in enumerate(OPS)}

#: Ops followed by a gain of 2 in He-style normalisation.
RELU_LIKE = frozenset({'relu', 'gelu', 'silu', 'hardswish', 'elu'})

#: Convolutions of every kind: their weight holds k×k kernel slices.
CONV_OPS = frozenset({'conv', 'conv_grouped', 'conv_dilated',
                      'conv_transpose'})

#: Ops whose weight is a dense matrix or kernel: convolutions and linear
#: layers.
WEIGHT_OPS = CONV_OPS | {'linear'}

#: Normalisation layers (their parameters are a per-channel scale and shift).
NORM_OPS = frozenset({'batch_norm', 'layer_norm', 'group_norm',
                      'instance_norm'})

#: Parameter-free ops that act on each channel alone: permuting the channels
#: before them permutes their output the same way.
CHANNELWISE_OPS = frozenset({
    'relu', 'gelu', 'silu', 'sigmoid', 'tanh', 'hardswish', 'hardsigmoid',
    'elu', 'activation', 'max_pool', 'avg_pool', 'adaptive_max_pool',
    'adaptive_avg_pool', 'global_max_pool', 'global_avg_pool', 'upsample',
    'bias'})


def op_index(name: str) -> int:
    """Returns the integer id of the op :obj:`name`."""
    try:
        return OP_INDEX[name]
    except KeyError:
        raise ValueError(f"Unknown op '{name}'; the vocabulary (version "
                         f"{VOCABULARY_VERSION}) has: {', '.join(OPS)}") from None


def _conv_op(groups: int, dilation: Sequence[int], transposed: bool) -> str:
    if transposed:
        return 'conv_transpose'
    if groups > 1:
        return 'conv_grouped'
    if any(d > 1 for d in dilation):
        return 'conv_dilated'
    return 'conv'


def _all_ones(size: Any) -> bool:
    sizes = size if isinstance(size, (tuple, list)) else (size, )
    return all(s == 1 for s in sizes)


_ACTIVATION_MODULES: Dict[type, str] = {
    nn.ReLU: 'relu',
    nn.ReLU6: 'relu',
    nn.LeakyReLU: 'relu',
    nn.PReLU: 'relu',
    nn.RReLU: 'relu',
    nn.Hardtanh: 'relu',
    nn.GELU: 'gelu',
    nn.SiLU: 'silu',
    nn.Sigmoid: 'sigmoid',
    nn.Tanh: 'tanh',
    nn.Hardswish: 'hardswish',
    nn.Hardsigmoid: 'hardsigmoid',
    nn.ELU: 'elu',
    nn.SELU: 'elu',
    nn.CELU: 'elu',
    nn.Mish: 'activation',
    nn.Softplus: 'activation',
    nn.Softsign: 'activation',
    nn.Tanhshrink: 'activation',
    nn.LogSigmoid: 'activation',
}

_FIXED_MODULE_OPS: Dict[type, str] = {
    nn.Linear: 'linear',
    nn.BatchNorm1d: 'batch_norm',
    nn.BatchNorm2d: 'batch_norm',
    nn.BatchNorm3d: 'batch_norm',
    nn.SyncBatchNorm: 'batch_norm',
    nn.LayerNorm: 'layer_norm',
    nn.RMSNorm: 'layer_norm',
    nn.GroupNorm: 'group_norm',
    nn.InstanceNorm1d: 'instance_norm',
    nn.InstanceNorm2d: 'instance_norm',
    nn.InstanceNorm3d: 'instance_norm',
    nn.Embedding: 'embedding',
    nn.MultiheadAttention: 'attention',
    nn.Softmax: 'softmax',
    nn.LogSoftmax: 'softmax',
    nn.MaxPool1d: 'max_pool',
    nn.MaxPool2d: 'max_pool',
    nn.MaxPool3d: 'max_pool',
    nn.AvgPool1d: 'avg_pool',
    nn.AvgPool2d: 'avg_pool',
    nn.AvgPool3d: 'avg_pool',
    nn.Upsample: 'upsample',
    nn.UpsamplingNearest2d: 'upsample',
    nn.UpsamplingBilinear2d: 'upsample',
    **_ACTIVATION_MODULES,
}

_CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                 nn.ConvTranspose2d, nn.ConvTranspose3d)
_ADAPTIVE_AVG = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                 nn.AdaptiveAvgPool3d)
_ADAPTIVE_MAX = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                 nn.AdaptiveMaxPool3d)

_SHAPE_ONLY_MODULES = frozenset({
    nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle, nn.ZeroPad1d,
    nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d,
    nn.ReplicationPad1d, nn.ReplicationPad2d
})


def is_shape_only_module(module: nn.Module) -> bool:
    """Whether :obj:`module` only moves data (contracted out of the graph)."""
    return type(module) in _SHAPE_ONLY_MODULES


_LEAF_TYPES = tuple(_FIXED_MODULE_OPS) + _CONV_MODULES + _ADAPTIVE_AVG + _ADAPTIVE_MAX


def is_known_module(module: nn.Module) -> bool:
    """Whether :obj:`module` is a leaf of the vocabulary (not traced into)."""
    return type(module) in _SHAPE_ONLY_MODULES or isinstance(module, _LEAF_TYPES)


def module_op(module: nn.Module) -> str:
    """The op name of a leaf module (``'module'`` for an unknown module with
    parameters, ``'generic'`` for an unknown parameter-free one)."""
    kind = type(module)
    op = _FIXED_MODULE_OPS.get(kind)
    if op is not None:
        return op
    if isinstance(module, _CONV_MODULES):
        return _conv_op(module.groups, module.dilation, module.transposed)
    if isinstance(module, _ADAPTIVE_AVG):
        return ('global_avg_pool'
                if _all_ones(module.output_size) else 'adaptive_avg_pool')
    if isinstance(module, _ADAPTIVE_MAX):
        return ('global_max_pool'
                if _all_ones(module.output_size) else 'adaptive_max_pool')
    for known, op in _FIXED_MODULE_OPS.items():  # subclasses of known types
        if isinstance(module, known):
            return op
    has_params = next(module.parameters(), None) is not None
    return 'module' if has_params else 'generic'


def module_node_layout(module: nn.Module, op: str) -> List[Tuple[str, List[str]]]:
    r"""How the parameters of a leaf module spread over a chain of nodes.

    A weight layer's bias gets a ``'bias'`` node of its own after the layer
    (as in GHN-2); an attention module becomes attention → out-projection →
    bias. Every other module is one node owning all of its parameters.

    Returns:
        A list of ``(op, [local parameter names])``, in data-flow order.
    """
    names = [name for name, _ in module.named_parameters()]
    if op in WEIGHT_OPS and 'bias' in names:
        return [(op, [n for n in names if n != 'bias']), ('bias', ['bias'])]
    if isinstance(module, nn.MultiheadAttention):
        out_proj = [n for n in names if n.startswith('out_proj.')]
        layout = [('attention', [n for n in names if n not in out_proj])]
        if 'out_proj.weight' in out_proj:
            layout.append(('linear', ['out_proj.weight']))
        if 'out_proj.bias' in out_proj:
            layout.append(('bias', ['out_proj.bias']))
        return layout
    return [(op, names)]


def _arg(args: Sequence[Any], kwargs: Dict[str, Any], index: int, name: str,
         default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _functional_conv(args, kwargs) -> str:
    # F.conv{1,2,3}d(input, weight, bias, stride, padding, dilation, groups)
    dilation = _arg(args, kwargs, 5, 'dilation', 1)
    groups = _arg(args, kwargs, 6, 'groups', 1)
    dilation = dilation if isinstance(dilation, (tuple, list)) else (dilation, )
    return _conv_op(groups if isinstance(groups, int) else 1, dilation,
                    transposed=False)


def _mean_op(args, kwargs, input_ndim: Optional[int]) -> str:
    dims = _arg(args, kwargs, 1, 'dim')
    # Only 4-D and larger inputs are unambiguously (N, C, spatial...).
    if input_ndim is None or input_ndim < 4 or dims is None:
        return 'mean'
    dims = dims if isinstance(dims, (tuple, list)) else (dims, )
    if not all(isinstance(d, int) for d in dims):
        return 'mean'
    dims = {d % input_ndim for d in dims}
    return 'global_avg_pool' if dims == set(range(2, input_ndim)) else 'mean'


def _adaptive(global_op: str, local_op: str):
    def resolve(args, kwargs, input_ndim):
        size = _arg(args, kwargs, 1, 'output_size')
        return global_op if size is not None and _all_ones(size) else local_op
    return resolve


def _same(op: str):
    return lambda args, kwargs, input_ndim: op


_ACTIVATION_FUNCTIONS: Dict[Callable, str] = {
    F.relu: 'relu', torch.relu: 'relu', F.relu_: 'relu', torch.relu_: 'relu',
    F.relu6: 'relu', F.leaky_relu: 'relu', F.prelu: 'relu', F.hardtanh: 'relu',
    F.rrelu: 'relu', F.gelu: 'gelu', F.silu: 'silu', torch.sigmoid: 'sigmoid',
    F.sigmoid: 'sigmoid', torch.tanh: 'tanh', F.tanh: 'tanh',
    F.hardswish: 'hardswish', F.hardsigmoid: 'hardsigmoid', F.elu: 'elu',
    F.selu: 'elu', F.celu: 'elu', F.mish: 'activation',
    F.softplus: 'activation', F.logsigmoid: 'activation',
}

_FUNCTION_OPS: Dict[Callable, Callable] = {
    operator.add: _same('sum'), operator.iadd: _same('sum'),
    operator.sub: _same('sum'), operator.isub: _same('sum'),
    torch.add: _same('sum'), torch.sub: _same('sum'),
    operator.mul: _same('multiply'), operator.imul: _same('multiply'),
    operator.truediv: _same('multiply'), operator.itruediv: _same('multiply'),
    torch.mul: _same('multiply'), torch.div: _same('multiply'),
    operator.matmul: _same('matmul'), torch.matmul: _same('matmul'),
    torch.bmm: _same('matmul'), torch.einsum: _same('matmul'),
    torch.cat: _same('concat'), torch.concat: _same('concat'),
    torch.stack: _same('concat'),
    F.softmax: _same('softmax'), torch.softmax: _same('softmax'),
    F.log_softmax: _same('softmax'),
    F.scaled_dot_product_attention: _same('attention'),
    F.conv1d: lambda a, k, n: _functional_conv(a, k),
    F.conv2d: lambda a, k, n: _functional_conv(a, k),
    F.conv3d: lambda a, k, n: _functional_conv(a, k),
    F.conv_transpose1d: _same('conv_transpose'),
    F.conv_transpose2d: _same('conv_transpose'),
    F.conv_transpose3d: _same('conv_transpose'),
    F.linear: _same('linear'),
    F.batch_norm: _same('batch_norm'), F.layer_norm: _same('layer_norm'),
    F.rms_norm: _same('layer_norm'), F.group_norm: _same('group_norm'),
    F.instance_norm: _same('instance_norm'), F.embedding: _same('embedding'),
    F.max_pool1d: _same('max_pool'), F.max_pool2d: _same('max_pool'),
    F.max_pool3d: _same('max_pool'), F.avg_pool1d: _same('avg_pool'),
    F.avg_pool2d: _same('avg_pool'), F.avg_pool3d: _same('avg_pool'),
    F.adaptive_avg_pool1d: _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    F.adaptive_avg_pool2d: _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    F.adaptive_avg_pool3d: _adaptive('global_avg_pool', 'adaptive_avg_pool'),
    F.adaptive_max_pool1d: _adaptive('global_max_pool', 'adaptive_max_pool'),
    F.adaptive_max_pool2d: _adaptive('global_max_pool', 'adaptive_max_pool'),
    F.adaptive_max_pool3d: _adaptive('global_max_pool', 'adaptive_max_pool'),
    torch.mean: _mean_op,
    F.interpolate: _same('upsample'),
    **{fn: _same(op) for fn, op in _ACTIVATION_FUNCTIONS.items()},
}

_METHOD_OPS: Dict[str, Callable] = {
    'add': _same('sum'), 'add_': _same('sum'), 'sub': _same('sum'),
    'sub_': _same('sum'), 'mul': _same('multiply'), 'mul_': _same('multiply'),
    'div': _same('multiply'), 'div_': _same('multiply'),
    'matmul': _same('matmul'), 'bmm': _same('matmul'),
    'softmax': _same('softmax'), 'log_softmax': _same('softmax'),
    'relu': _same('relu'), 'relu_': _same('relu'),
    'sigmoid': _same('sigmoid'), 'sigmoid_': _same('sigmoid'),
    'tanh': _same('tanh'), 'tanh_': _same('tanh'),
    'mean': _mean_op,
}

_SHAPE_ONLY_FUNCTIONS = frozenset({
    torch.flatten, torch.reshape, torch.permute, torch.transpose,
    torch.swapaxes, torch.squeeze, torch.unsqueeze, torch.chunk, torch.split,
    torch.unbind, torch.narrow, torch.movedim, torch.roll, torch.flip, torch.t,
    torch.clone, operator.getitem, F.dropout, F.dropout1d, F.dropout2d,
    F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, F.pad,
    torch.channel_shuffle, F.pixel_shuffle, F.pixel_unshuffle,
    torch.nn.functional.unfold
})

_SHAPE_ONLY_METHODS = frozenset({
    'view', 'view_as', 'reshape', 'reshape_as', 'permute', 'transpose',
    'flatten', 'unflatten', 'contiguous', 'squeeze', 'unsqueeze', 'expand',
    'expand_as', 'chunk', 'split', 'unbind', 'narrow', 'to', 'type', 'float',
    'double', 'half', 'bfloat16', 'clone', 'detach', 'repeat', 'movedim',
    't', 'roll', 'flip', '__getitem__', 'swapaxes', 'unfold'
})


# Functions of other libraries that torch.fx keeps whole (``torch.fx.wrap``),
# by qualified name so that those libraries need not be importable here.
# ``None`` marks a shape-only function.
_EXTERNAL_FUNCTIONS: Dict[str, Optional[str]] = {
    'torchvision.ops.stochastic_depth.stochastic_depth': None,
    'torchvision.models.swin_transformer._patch_merging_pad': None,
    'torchvision.models.swin_transformer.shifted_window_attention': 'attention',
}


def _qualified_name(target: Callable) -> str:
    return (f"{getattr(target, '__module__', '')}."
            f"{getattr(target, '__qualname__', '')}")


def _is_namedtuple_class(target: Callable) -> bool:
    return (isinstance(target, type) and issubclass(target, tuple)
            and hasattr(target, '_fields'))


def is_shape_only_function(target: Callable) -> bool:
    """Whether calling :obj:`target` only moves data (contracted)."""
    if target in _SHAPE_ONLY_FUNCTIONS or _is_namedtuple_class(target):
        return True
    qualified = _qualified_name(target)
    return qualified in _EXTERNAL_FUNCTIONS and _EXTERNAL_FUNCTIONS[qualified] is None


def is_shape_only_method(name: str) -> bool:
    """Whether the tensor method :obj:`name` only moves data (contracted)."""
    return name in _SHAPE_ONLY_METHODS


def function_op(target: Callable, args: Sequence[Any] = (),
                kwargs: Dict[str, Any] = None,
                input_ndim: Optional[int] = None) -> str:
    """The op name of a traced function call (``'generic'`` if unknown)."""
    resolve = _FUNCTION_OPS.get(target)
    if resolve is not None:
        return resolve(args, kwargs or {}, input_ndim)
    return _EXTERNAL_FUNCTIONS.get(_qualified_name(target)) or 'generic'


def method_op(name: str, args: Sequence[Any] = (), kwargs: Dict[str, Any] = None,
              input_ndim: Optional[int] = None) -> str:
    """The op name of a traced tensor-method call (``'generic'`` if unknown).

    :obj:`args` excludes the tensor the method is called on.
    """
    resolve = _METHOD_OPS.get(name)
    if resolve is None:
        return 'generic'
    # Methods take the tensor as `self`; shift so `dim` sits at index 1.
    return resolve((None, ) + tuple(args), kwargs or {}, input_ndim)
