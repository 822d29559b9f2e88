"""ghnlib: initialise neural networks with generative models."""
from ghnlib.errors import GhnlibError, GraphConversionError
from ghnlib import (archspace, data, graph, hyperrep, init, local, metrics,
                    models, nn, ops, train, zoo)
from ghnlib.graph import ArchGraph, to_graph, from_onnx
from ghnlib.nn import GraphHyperNetwork

__version__ = '0.1.0'

__all__ = [
    'GraphHyperNetwork',
    'ArchGraph',
    'to_graph',
    'from_onnx',
    'GhnlibError',
    'GraphConversionError',
    'archspace',
    'data',
    'graph',
    'hyperrep',
    'init',
    'local',
    'metrics',
    'models',
    'nn',
    'ops',
    'train',
    'zoo',
    '__version__',
]
