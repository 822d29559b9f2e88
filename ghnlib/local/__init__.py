r"""Local initialisation: generative models of k×k kernel slices, one per
convolutional layer, fit on a model zoo and sampled into new networks."""
from ghnlib.local.code_prior import CodePrior
from ghnlib.local.fit import fit_kernel_model
from ghnlib.local.initializer import InitReport, LocalInitializer
from ghnlib.local.kernel_vae import KernelVAE
from ghnlib.local.kernel_vqvae import KernelVQVAE
from ghnlib.local.schemes import vae_init, vqvae_init
from ghnlib.local.weight_dataset import (ConvLayer, WeightDataset,
                                         build_weight_datasets, conv_layers,
                                         kernel_slices, prune_slices)

__all__ = [
    'LocalInitializer',
    'InitReport',
    'KernelVAE',
    'KernelVQVAE',
    'CodePrior',
    'fit_kernel_model',
    'ConvLayer',
    'WeightDataset',
    'conv_layers',
    'kernel_slices',
    'prune_slices',
    'build_weight_datasets',
    'vae_init',
    'vqvae_init',
]
