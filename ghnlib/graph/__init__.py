r"""Architectures as computational graphs: ``nn.Module`` / ONNX → :class:`ArchGraph`."""
from ghnlib.graph.vocabulary import OPS, OP_INDEX, RELU_LIKE, VOCABULARY_VERSION
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.virtual_edges import virtual_edges
from ghnlib.graph.levels import node_levels
from ghnlib.graph.to_graph import DEFAULT_VE_CUTOFF, to_graph
from ghnlib.graph.onnx import from_onnx
from ghnlib.graph.draw import draw_graph
from ghnlib.errors import GraphConversionError

__all__ = [
    'ArchGraph',
    'to_graph',
    'from_onnx',
    'draw_graph',
    'virtual_edges',
    'node_levels',
    'GraphConversionError',
    'OPS',
    'OP_INDEX',
    'RELU_LIKE',
    'VOCABULARY_VERSION',
    'DEFAULT_VE_CUTOFF',
]
