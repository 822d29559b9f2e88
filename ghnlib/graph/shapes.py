r"""Output shapes of traced calls, computed without computing.

Values flowing through a trace are tensors on the ``meta`` device: they carry
shape and dtype but no data. The layers of the vocabulary and every pointwise
op get a closed-form rule (cheaper than even a meta kernel, and independent of
input resolution); anything else runs on meta tensors; an opaque module that
cannot run on meta tensors runs once on zeros.
"""
import contextlib
import operator
from typing import Any, Callable, Dict, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['meta_like', 'infer_module', 'infer_function', 'infer_method']


def meta_like(tensor: torch.Tensor) -> torch.Tensor:
    """A data-free stand-in of :obj:`tensor` with the same shape and dtype."""
    return torch.empty(tensor.shape, dtype=tensor.dtype, device='meta')


def _meta(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device='meta')


def _tuple(value: Any, n: int) -> Tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, ) * n


def _window_out(size: int, kernel: int, stride: int, padding: int,
                dilation: int = 1, ceil_mode: bool = False) -> int:
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # The last window must start inside the input or the left padding.
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _conv(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    dims = len(module.kernel_size)
    spatial = x.shape[-dims:]
    if module.transposed:
        out = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1
               for i, k, s, p, d, op in zip(spatial, module.kernel_size,
                                            module.stride, module.padding,
                                            module.dilation,
                                            module.output_padding)]
    elif module.padding == 'same':
        out = list(spatial)
    else:
        padding = (0, ) * dims if module.padding == 'valid' else module.padding
        out = [
            _window_out(i, k, s, p, d) for i, k, s, p, d in zip(
                spatial, module.kernel_size, module.stride, padding,
                module.dilation)
        ]
    if min(out) < 1:
        raise ValueError(f'input of spatial size {tuple(spatial)} is too small '
                         f'for {module}')
    return _meta((*x.shape[:-dims - 1], module.out_channels, *out), x.dtype)


_POOL_DIMS = {
    nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1,
    nn.AvgPool2d: 2, nn.AvgPool3d: 3
}


def _pool(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    dims = _POOL_DIMS[type(module)]
    kernel = _tuple(module.kernel_size, dims)
    stride = _tuple(module.stride or module.kernel_size, dims)
    padding = _tuple(module.padding, dims)
    dilation = _tuple(getattr(module, 'dilation', 1), dims)
    spatial = x.shape[-dims:]
    out = [
        _window_out(i, k, s, p, d, module.ceil_mode)
        for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
    ]
    if min(out) < 1:
        raise ValueError(f'input of spatial size {tuple(spatial)} is too small '
                         f'for {module}')
    return _meta((*x.shape[:-dims], *out), x.dtype)


_ADAPTIVE_POOL_DIMS = {
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3
}


def _adaptive_pool(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    dims = _ADAPTIVE_POOL_DIMS[type(module)]
    size = _tuple(module.output_size, dims)
    spatial = x.shape[-dims:]
    out = [i if s is None else s for i, s in zip(spatial, size)]
    value = _meta((*x.shape[:-dims], *out), x.dtype)
    if getattr(module, 'return_indices', False):
        return value, _meta(value.shape, torch.int64)
    return value


def _same_shape(module: nn.Module, x: torch.Tensor, *args, **kwargs):
    return x


def _linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] != module.in_features:
        raise ValueError(f'input of shape {tuple(x.shape)} does not match '
                         f'in_features={module.in_features}')
    return _meta((*x.shape[:-1], module.out_features), x.dtype)


def _embedding(module: nn.Embedding, x: torch.Tensor) -> torch.Tensor:
    return _meta((*x.shape, module.embedding_dim), module.weight.dtype)


def _attention(module: nn.MultiheadAttention, query: torch.Tensor,
               key: torch.Tensor, *args, need_weights: bool = True,
               average_attn_weights: bool = True, **kwargs):
    out = _meta((*query.shape[:-1], module.embed_dim), query.dtype)
    if not need_weights:
        return out, None
    if query.dim() == 2:
        target, source, batch = query.shape[0], key.shape[0], ()
    elif module.batch_first:
        batch, target, source = (query.shape[0], ), query.shape[1], key.shape[1]
    else:
        batch, target, source = (query.shape[1], ), query.shape[0], key.shape[0]
    heads = () if average_attn_weights else (module.num_heads, )
    return out, _meta((*batch, *heads, target, source), query.dtype)


_SAME_SHAPE_MODULES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
    nn.Identity, nn.Softmax, nn.LogSoftmax, nn.ReLU, nn.ReLU6, nn.LeakyReLU,
    nn.PReLU, nn.RReLU, nn.Hardtanh, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.ELU, nn.SELU, nn.CELU, nn.Mish,
    nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.ChannelShuffle)

_MODULE_RULES: Dict[type, Callable] = {
    **{kind: _same_shape for kind in _SAME_SHAPE_MODULES},
    **{kind: _pool for kind in _POOL_DIMS},
    **{
        kind: _conv
        for kind in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                     nn.ConvTranspose2d, nn.ConvTranspose3d)
    },
    **{kind: _adaptive_pool for kind in _ADAPTIVE_POOL_DIMS},
    nn.Linear: _linear,
    nn.Embedding: _embedding,
    nn.MultiheadAttention: _attention,
}


@contextlib.contextmanager
def _plain_module_calls():
    """Calls modules as usual even while a :mod:`torch.fx` trace is running
    (which patches ``nn.Module.__call__`` and ``__getattr__``)."""
    from torch.fx import _symbolic_trace

    patched = nn.Module.__call__, nn.Module.__getattr__
    nn.Module.__call__ = _symbolic_trace._orig_module_call
    nn.Module.__getattr__ = _symbolic_trace._orig_module_getattr
    try:
        yield
    finally:
        nn.Module.__call__, nn.Module.__getattr__ = patched


def _run_on_meta(module: nn.Module, args, kwargs):
    state = {
        name: meta_like(tensor)
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]
    }
    return torch.func.functional_call(module, state, tuple(args), kwargs)


def _run_on_zeros(module: nn.Module, args, kwargs):
    def zeros(value):
        if isinstance(value, torch.Tensor) and value.device.type == 'meta':
            return torch.zeros(value.shape, dtype=value.dtype)
        if isinstance(value, (tuple, list)):
            return type(value)(zeros(v) for v in value)
        if isinstance(value, dict):
            return {k: zeros(v) for k, v in value.items()}
        return value

    with torch.no_grad():
        out = module(*zeros(args), **zeros(kwargs))
    return _to_meta(out)


def _to_meta(value):
    if isinstance(value, torch.Tensor):
        return meta_like(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def infer_module(module: nn.Module, args: Sequence[Any],
                 kwargs: Dict[str, Any]) -> Any:
    """The output value of calling the leaf :obj:`module` on meta values."""
    rule = _MODULE_RULES.get(type(module))
    if rule is not None:
        return rule(module, *args, **kwargs)
    if isinstance(module, nn.Flatten):
        return torch.flatten(args[0], module.start_dim, module.end_dim)
    with _plain_module_calls():
        try:
            return _run_on_meta(module, args, kwargs)
        except Exception:
            if any(p.device.type == 'meta' for p in module.parameters()):
                raise
            # Data-dependent modules cannot run on meta tensors; one real
            # call on zeros gives the shapes.
            return _run_on_zeros(module, args, kwargs)


def _broadcast(args: Sequence[Any]) -> torch.Tensor:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if len(tensors) == 1:
        return torch.empty_like(tensors[0])
    shapes = [t.shape for t in tensors]
    first = shapes[0]
    if all(s == first for s in shapes):
        shape = first
    else:
        shape = torch.broadcast_shapes(*shapes)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dtype:
            dtype = torch.promote_types(dtype, t.dtype)
    return _meta(shape, dtype)


_POINTWISE_FUNCTIONS = frozenset({
    operator.add, operator.iadd, operator.sub, operator.isub, operator.mul,
    operator.imul, operator.truediv, operator.itruediv, operator.neg,
    torch.add, torch.sub, torch.mul, torch.div, F.relu, torch.relu, F.relu_,
    torch.relu_, F.relu6, F.leaky_relu, F.hardtanh, F.gelu, F.silu,
    torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.hardswish, F.hardsigmoid,
    F.elu, F.selu, F.celu, F.mish, F.softplus, F.dropout, F.dropout1d,
    F.dropout2d, F.dropout3d, F.softmax, torch.softmax, F.log_softmax
})

_POINTWISE_METHODS = frozenset({
    'add', 'add_', 'sub', 'sub_', 'mul', 'mul_', 'div', 'div_', 'relu',
    'relu_', 'sigmoid', 'sigmoid_', 'tanh', 'tanh_', 'softmax', 'neg', 'exp',
    'sqrt', 'abs'
})


def infer_function(target: Callable, args: Sequence[Any],
                   kwargs: Dict[str, Any]) -> Any:
    """The output value of calling :obj:`target` on meta values."""
    if target in _POINTWISE_FUNCTIONS and not kwargs.get('out'):
        # `F.softmax(x, dim)` and the like carry no second tensor: same shape.
        return _broadcast(args)
    return target(*args, **kwargs)


def infer_method(name: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> Any:
    """The output value of the tensor method :obj:`name` on meta values."""
    if name in _POINTWISE_METHODS:
        return _broadcast(args)
    return getattr(args[0], name)(*args[1:], **kwargs)
