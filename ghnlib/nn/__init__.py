r"""The graph hypernetwork: node encoder, GatedGNN, decoder."""
from ghnlib.nn.node_encoder import NodeEncoder
from ghnlib.nn.gated_gnn import GatedGNN, SweepSchedule
from ghnlib.nn.decoder import ParameterDecoder
from ghnlib.nn.graph_hypernetwork import GraphHyperNetwork
from ghnlib.nn.ghn_schemes import ghn_init, noise_ghn_init

__all__ = [
    'GraphHyperNetwork',
    'NodeEncoder',
    'GatedGNN',
    'SweepSchedule',
    'ParameterDecoder',
    'ghn_init',
    'noise_ghn_init',
]
