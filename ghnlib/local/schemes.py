r"""The local initialisation schemes, registered as :obj:`'vae:DIR'` and
:obj:`'vqvae:DIR'`."""
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError
from ghnlib.init import DEFAULT_INPUT_SHAPE, InitFunction, register_initializer
from ghnlib.local.initializer import LocalInitializer

__all__ = ['vae_init', 'vqvae_init']


def _local_init(kind: str, directory: str) -> InitFunction:
    local = LocalInitializer.load(directory)
    if local.kind != kind:
        raise GhnlibError(f"initializer '{kind}:{directory}': the folder holds "
                          f"a {local.kind} initialiser; use "
                          f"'{local.kind}:{directory}'")

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        return local.init_(model, generator, input_shape=input_shape)

    return init


@register_initializer('vae', argument='DIR')
def vae_init(directory: str) -> InitFunction:
    r"""Convolution kernels sampled slice by slice from per-layer VAEs
    (:class:`~ghnlib.local.LocalInitializer`, kind :obj:`'vae'`); other
    parameters keep the model's own initialisation.

    Args:
        directory (str): A folder written by :meth:`LocalInitializer.save`.
    """
    return _local_init('vae', directory)


@register_initializer('vqvae', argument='DIR')
def vqvae_init(directory: str) -> InitFunction:
    r"""As :obj:`vae:DIR`, from per-layer VQ-VAEs (with their code prior
    when it was fit: the paper's VQVAE*).

    Args:
        directory (str): A folder written by :meth:`LocalInitializer.save`.
    """
    return _local_init('vqvae', directory)
