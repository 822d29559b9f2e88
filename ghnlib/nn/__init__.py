r"""The graph hypernetwork: node encoder, GatedGNN and its sweep schedule,
decoder, and the prepared batches it predicts from."""
from ghnlib.nn.node_encoder import NodeEncoder
from ghnlib.nn.sweep_schedule import SweepSchedule
from ghnlib.nn.gated_gnn import GatedGNN
from ghnlib.nn.decoder import ParameterDecoder
from ghnlib.nn.prepared_batch import PreparedBatch
from ghnlib.nn.graph_hypernetwork import GraphHyperNetwork
from ghnlib.nn.ghn_schemes import ghn_init, noise_ghn_init

__all__ = [
    'GraphHyperNetwork',
    'PreparedBatch',
    'NodeEncoder',
    'GatedGNN',
    'SweepSchedule',
    'ParameterDecoder',
    'ghn_init',
    'noise_ghn_init',
]
