r"""``nn.Module`` → :class:`ArchGraph`, through a shape-propagating fx trace."""
from typing import Any, Iterable, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GraphConversionError
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.export import ExportGraphBuilder, export_program
from ghnlib.graph.fx_builder import FxGraphBuilder
from ghnlib.graph.tracer import RootTraceError, example_values, trace

__all__ = ['to_graph', 'DEFAULT_VE_CUTOFF']

#: Longest shortest-path kept as a virtual edge (GHN-2's :math:`s_{\max}`).
DEFAULT_VE_CUTOFF = 50

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

    A submodule fx cannot trace becomes one opaque node
    (:attr:`ArchGraph.opaque`); a model whose own ``forward`` fx cannot trace
    is read with :func:`torch.export.export` instead
    (:attr:`ArchGraph.frontend` says so); if both fail,
    :class:`GraphConversionError` gives both causes.

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
    try:
        fx_graph, tracer, opaque = trace(model, example_input, leaf_modules,
                                         training)
    except RootTraceError as fx_error:
        builder = _export_fallback(model, example_input, training, fx_error)
        opaque, shape_failures = [], []
        frontend = f'torch.export (torch.fx failed: {fx_error.fx_cause})'
    else:
        builder = FxGraphBuilder(tracer.parameters)
        for fx_node in fx_graph.nodes:
            builder.visit(fx_node)
        shape_failures = sorted(tracer.shape_failures.items())
        frontend = 'torch.fx'

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
                                 shape_failures, frontend)


def _export_fallback(model: nn.Module, example_input: Any, training: bool,
                     fx_error: RootTraceError) -> ExportGraphBuilder:
    inputs, _ = example_values(model, example_input)
    try:
        program = export_program(model, inputs, training)
    except Exception as error:
        raise GraphConversionError(
            '', f'torch.fx cannot trace its forward() ({fx_error.fx_cause}) '
            f'and the torch.export fallback failed too ({type(error).__name__}'
            f': {str(error).splitlines()[0] if str(error) else ""}). '
            f'{fx_error.hint}; value-dependent branches can also be written '
            'with torch.cond, which torch.export captures',
            type(model).__name__) from error
    builder = ExportGraphBuilder(dict(model.named_parameters()), program)
    builder.build()
    return builder
