"""ghnlib: initialise neural networks with generative models."""
from ghnlib.errors import GhnlibError, GraphConversionError
from ghnlib import graph, models
from ghnlib.graph import ArchGraph, to_graph, from_onnx

__version__ = '0.1.0'

__all__ = [
    'ArchGraph',
    'to_graph',
    'from_onnx',
    'GhnlibError',
    'GraphConversionError',
    'graph',
    'models',
    '__version__',
]
