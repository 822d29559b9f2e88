r"""Hyper-representations (`"Hyper-Representations as Generative Models:
Sampling Unseen Neural Network Weights" <https://arxiv.org/abs/2209.14733>`_):
a transformer autoencoder over a zoo's neuron tokens, sampled with a KDE in
its latent space to initialise new networks (:obj:`hyperrep:DIR`)."""
from ghnlib.hyperrep.tokenizer import TokenLayer, WeightTokenizer
from ghnlib.hyperrep.loss import layerwise_mse, nt_xent
from ghnlib.hyperrep.model import WeightAutoencoder
from ghnlib.hyperrep.sampling import (GaussianKDE, sample_raw_weights,
                                      top_fraction_indices)
from ghnlib.hyperrep.zoo_weights import ZooWeights, load_zoo_weights
from ghnlib.hyperrep.hyper_representation import HyperRepresentation
from ghnlib.hyperrep.train_hyperrep import train_hyperrep
from ghnlib.hyperrep.initializer import hyperrep_init, load_hyperrep

__all__ = [
    'HyperRepresentation',
    'train_hyperrep',
    'WeightTokenizer',
    'TokenLayer',
    'WeightAutoencoder',
    'layerwise_mse',
    'nt_xent',
    'GaussianKDE',
    'top_fraction_indices',
    'sample_raw_weights',
    'ZooWeights',
    'load_zoo_weights',
    'hyperrep_init',
    'load_hyperrep',
]
