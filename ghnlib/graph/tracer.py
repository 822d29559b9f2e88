r"""A :class:`torch.fx.Tracer` that propagates shapes while it traces.

Each node of the traced :class:`torch.fx.Graph` gets ``node.meta['value']``:
a ``meta``-device tensor (or a tuple of them) with the shape and dtype the
real forward would produce, or :obj:`None` where it could not be inferred
(the reason is in :attr:`ShapeTracer.shape_failures`). Because proxies know
their shapes, shape-dependent Python (``if x.dim() == 4``, ``x.shape[-1]``,
unpacking a chunked tensor) traces as it would run.

Tracing falls back in two steps, each recorded:

1. a submodule whose ``forward`` cannot be traced (data-dependent control
   flow, unsupported Python) is retried as a leaf: it becomes one opaque
   node, its output shape taken from a meta run or, failing that, one real
   run on zeros;
2. if the model's own ``forward`` cannot be traced, :func:`trace` raises
   :class:`RootTraceError`, on which :func:`~ghnlib.graph.to_graph` tries
   :mod:`torch.export` (:mod:`ghnlib.graph.export`).
"""
import inspect
import math
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import torch
import torch.fx as fx
import torch.nn as nn

from ghnlib.errors import GraphConversionError
from ghnlib.graph.shapes import (infer_function, infer_method, infer_module,
                                 meta_like)
from ghnlib.graph.vocabulary import is_known_module

__all__ = ['ShapeTracer', 'RootTraceError', 'trace', 'example_values']


class _ValueProxy(fx.Proxy):
    """A proxy that answers shape questions from its node's meta value."""
    def _tensor(self) -> Optional[torch.Tensor]:
        value = self.node.meta.get('value')
        return value if isinstance(value, torch.Tensor) else None

    @property
    def shape(self):
        value = self._tensor()
        if value is None:
            return self.tracer.create_proxy('call_function', getattr,
                                            (self, 'shape'), {})
        return value.shape

    def size(self, dim: Optional[int] = None):
        value = self._tensor()
        if value is None:
            args = (self, ) if dim is None else (self, dim)
            return self.tracer.create_proxy('call_method', 'size', args, {})
        return value.size() if dim is None else value.size(dim)

    def dim(self):
        value = self._tensor()
        if value is None:
            return self.tracer.create_proxy('call_method', 'dim', (self, ), {})
        return value.dim()

    @property
    def ndim(self):
        return self.dim()

    def numel(self):
        value = self._tensor()
        if value is None:
            return self.tracer.create_proxy('call_method', 'numel', (self, ),
                                            {})
        return value.numel()

    @property
    def dtype(self):
        value = self._tensor()
        if value is None:
            return self.tracer.create_proxy('call_function', getattr,
                                            (self, 'dtype'), {})
        return value.dtype

    @property
    def device(self):
        return torch.device('meta')

    @property
    def is_cuda(self):
        return False

    def __len__(self):
        value = self.node.meta.get('value')
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
        if isinstance(value, (tuple, list)):
            return len(value)
        raise fx.proxy.TraceError(
            f"len() of '{self.node.name}' is unknown: its shape could not be "
            'inferred')

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def _as_number(self, *args):
        raise fx.proxy.TraceError(
            f"the value of '{self.node.name}' is used as a Python number; "
            'values are not known while tracing')

    __int__ = __float__ = __index__ = _as_number


class RootTraceError(GraphConversionError):
    """torch.fx could not trace the model's own ``forward``."""
    def __init__(self, cause: str, hint: str, model_type: str):
        super().__init__('', f'torch.fx cannot trace its forward() ({cause}). '
                         f'{hint}', model_type)
        self.fx_cause = cause
        self.hint = hint


class _SubmoduleTraceError(Exception):
    def __init__(self, path: str, error: Exception):
        super().__init__(path, error)
        self.path = path
        self.error = error


def _to_values(arg: Any) -> Any:
    if isinstance(arg, fx.Proxy):
        value = arg.node.meta.get('value')
        if value is None:
            raise _UnknownInput(arg.node.name)
        return value
    if isinstance(arg, (tuple, list)):
        values = [_to_values(a) for a in arg]
        return tuple(values) if isinstance(arg, tuple) else values
    if isinstance(arg, dict):
        return {k: _to_values(v) for k, v in arg.items()}
    if isinstance(arg, slice):
        return slice(_to_values(arg.start), _to_values(arg.stop),
                     _to_values(arg.step))
    return arg


class _UnknownInput(Exception):
    pass


_PLAIN_ARGS = frozenset({int, float, bool, str, type(None), torch.dtype,
                         torch.device, torch.memory_format, torch.layout})


class ShapeTracer(fx.Tracer):
    r"""Traces a model into a :class:`torch.fx.Graph` with meta values.

    Modules of the op vocabulary are leaves; everything else is traced into.

    Args:
        leaf_paths (Iterable[str], optional): Qualified names of extra
            submodules to keep as opaque leaves. (default: :obj:`()`)
    """
    def __init__(self, leaf_paths: Iterable[str] = ()):
        super().__init__(autowrap_modules=(math, ))
        self.leaf_paths: Set[str] = set(leaf_paths)
        self.shape_failures: Dict[str, str] = {}
        self.constants: Dict[str, torch.Tensor] = {}
        self.input_values: Dict[str, Any] = {}
        self.defaults: Dict[str, Any] = {}
        self.parameters: Dict[str, nn.Parameter] = {}
        self._attr_values: Dict[str, torch.Tensor] = {}
        self._leaf_module: Optional[nn.Module] = None

    def trace(self, root: nn.Module, concrete_args=None) -> fx.Graph:
        # One walk instead of named_parameters() + named_buffers(), with the
        # same de-duplication of shared tensors (first path wins).
        params: Dict[str, nn.Parameter] = {}
        tensors: Dict[str, torch.Tensor] = {}
        seen = set()
        for path, module in root.named_modules():
            prefix = f'{path}.' if path else ''
            for store, is_param in (
                    (module.named_parameters(recurse=False), True),
                    (module.named_buffers(recurse=False), False)):
                for name, tensor in store:
                    if id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                    tensors[prefix + name] = tensor
                    if is_param:
                        params[prefix + name] = tensor
        self.parameters = params
        self._attr_values = tensors
        return super().trace(root, concrete_args)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ValueProxy(node, self)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaf_paths or is_known_module(m)

    def call_module(self, m: nn.Module, forward, args, kwargs):
        path = self.submodule_paths.get(m)
        if path is None:
            path = self.path_of_module(m)
        if self.is_leaf_module(m, path):
            self._leaf_module = m
            return self.create_proxy('call_module', path, args, kwargs)
        try:
            return forward(*args, **kwargs)
        except _SubmoduleTraceError:
            raise
        except Exception as error:
            raise _SubmoduleTraceError(path, error) from error

    def create_arg(self, a: Any):
        kind = type(a)
        if kind in _PLAIN_ARGS:
            return a
        if kind is _ValueProxy:
            return a.node
        if kind is tuple or kind is list:
            return kind(self.create_arg(item) for item in a)
        if (isinstance(a, torch.Tensor) and not isinstance(a, nn.Parameter)
                and a not in self.tensor_attrs):
            # A tensor built during the forward: keep it here instead of
            # attaching it to the user's model as fx would.
            for name, known in self._attr_values.items():
                if known is a:
                    return self.create_node('get_attr', name, (), {})
            name = f'_constant_{len(self.constants)}'
            self.constants[name] = a
            return self.create_node('get_attr', name, (), {})
        return super().create_arg(a)

    def create_node(self, kind, target, args, kwargs, name=None,
                    type_expr=None) -> fx.Node:
        node = self.graph.create_node(kind, target, args, kwargs, name,
                                      type_expr)
        if kind == 'get_attr':
            tensor = self.constants.get(target)
            if tensor is None:
                tensor = self._attr_values.get(target)
            if tensor is None:
                tensor = self.root.get_submodule(
                    target.rpartition('.')[0]).__getattr__(
                        target.rpartition('.')[2])
            node.meta['value'] = (meta_like(tensor) if isinstance(
                tensor, torch.Tensor) else tensor)
        return node

    def create_proxy(self, kind, target, args, kwargs, name=None,
                     type_expr=None, proxy_factory_fn=None):
        if kind == 'placeholder' and target in self.defaults:
            # An input the example does not give runs with its default,
            # as a constant rather than a traced value.
            return self.defaults[target]
        module, self._leaf_module = self._leaf_module, None
        proxy = super().create_proxy(kind, target, args, kwargs, name,
                                     type_expr, proxy_factory_fn)
        node = proxy.node
        if kind == 'placeholder':
            node.meta['value'] = self.input_values.get(target)
            return proxy
        if kind == 'get_attr':
            return proxy
        if kind == 'call_module':
            node.meta['module'] = module
        try:
            arg_values = _to_values(args)
            kwarg_values = _to_values(kwargs)
            if kind == 'call_module':
                value = infer_module(module, arg_values, kwarg_values)
            elif kind == 'call_function':
                value = infer_function(target, arg_values, kwarg_values)
            else:
                value = infer_method(target, arg_values, kwarg_values)
        except _UnknownInput as unknown:
            value = None
            self.shape_failures[node.name] = (
                f"its input '{unknown.args[0]}' has no known shape")
        except Exception as error:
            value = None
            self.shape_failures[node.name] = f'{type(error).__name__}: {error}'
        node.meta['value'] = value
        return proxy


def example_values(model: nn.Module, example_input: Any,
                    ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Splits an example input over ``forward``'s signature.

    Returns the meta values of the traced inputs and the concrete defaults
    of the parameters that were not given.
    """
    signature = inspect.signature(type(model).forward)
    params = [
        p for p in list(signature.parameters.values())[1:]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if isinstance(example_input, dict):
        given = dict(example_input)
    else:
        if not isinstance(example_input, (tuple, list)):
            example_input = (example_input, )
        if len(example_input) > len(params):
            raise GraphConversionError(
                '', f'got {len(example_input)} example inputs but forward() '
                f'takes {len(params)}: {[p.name for p in params]}',
                type(model).__name__)
        given = {p.name: v for p, v in zip(params, example_input)}
    unknown = set(given) - {p.name for p in params}
    if unknown:
        raise GraphConversionError(
            '', f'example inputs {sorted(unknown)} are not parameters of '
            f'forward(); it takes {[p.name for p in params]}',
            type(model).__name__)
    inputs, defaults = {}, {}
    for p in params:
        if p.name in given:
            value = given[p.name]
            inputs[p.name] = (meta_like(value) if isinstance(
                value, torch.Tensor) else value)
        elif p.default is not p.empty:
            defaults[p.name] = p.default
        else:
            raise GraphConversionError(
                '', f"forward() needs '{p.name}' but no example input was "
                'given for it; pass example_input as a tuple or dict',
                type(model).__name__)
    return inputs, defaults


def trace(model: nn.Module, example_input: Any,
          leaf_paths: Iterable[str] = (),
          training: bool = True) -> Tuple[fx.Graph, ShapeTracer, List[Tuple[str, str]]]:
    r"""Traces :obj:`model` with shape propagation and leaf fallbacks.

    Args:
        model (torch.nn.Module): The model.
        example_input (Any): A tensor, a tuple of positional inputs or a dict
            of keyword inputs (real or ``meta`` tensors; only shapes are used).
        leaf_paths (Iterable[str], optional): Submodules to keep opaque.
            (default: :obj:`()`)
        training (bool, optional): Trace the training-mode forward, so that
            branches used only in training (auxiliary heads) are included.
            (default: :obj:`True`)

    Returns:
        The graph, the tracer that made it, and the ``(path, reason)`` of
        every submodule that had to become an opaque leaf.
    """
    inputs, defaults = example_values(model, example_input)
    leaf_paths = set(leaf_paths)
    fallbacks: List[Tuple[str, str]] = []
    # object.__setattr__: nn.Module.__setattr__ is slow and `training` is a
    # plain attribute.
    switched = [m for m in model.modules() if m.training != training]
    for m in switched:
        object.__setattr__(m, 'training', training)
    try:
        while True:
            tracer = ShapeTracer(leaf_paths)
            tracer.input_values = inputs
            tracer.defaults = defaults
            try:
                graph = tracer.trace(model)
                return graph, tracer, fallbacks
            except _SubmoduleTraceError as failure:
                cause = f'{type(failure.error).__name__}: {failure.error}'
                if failure.path in leaf_paths:
                    raise GraphConversionError(failure.path, cause,
                                               type(model).__name__) from None
                leaf_paths.add(failure.path)
                fallbacks.append((failure.path, cause))
            except GraphConversionError:
                raise
            except Exception as error:
                cause = f'{type(error).__name__}: {error}'
                if isinstance(error, fx.proxy.TraceError):
                    hint = ('Control flow that depends on tensor values '
                            'cannot be traced: move it into a submodule '
                            '(traced as an opaque node), or name such '
                            'submodules in leaf_modules=[...]')
                else:
                    shapes = {k: tuple(v.shape) for k, v in inputs.items()
                              if isinstance(v, torch.Tensor)}
                    hint = (f'forward() failed on inputs of shapes {shapes}; '
                            'check example_input / input_shape')
                raise RootTraceError(cause, hint,
                                     type(model).__name__) from error
    finally:
        for m in switched:
            object.__setattr__(m, 'training', not training)
