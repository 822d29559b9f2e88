r"""The initialisation schemes of graph hypernetworks, registered as
:obj:`'ghn:PATH'` and :obj:`'noise-ghn:PATH'`."""
import functools
import os
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError
from ghnlib.init import DEFAULT_INPUT_SHAPE, InitFunction, register_initializer
from ghnlib.nn.graph_hypernetwork import GraphHyperNetwork

__all__ = ['ghn_init', 'noise_ghn_init']


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int):
    return GraphHyperNetwork.load(path).eval()


def _load_ghn(path: str, spec: str):
    r"""Loads the :class:`~ghnlib.GraphHyperNetwork` at :obj:`path`, once per
    version of the file (a rewritten file is read again)."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        stat = os.stat(path)
    except OSError:
        raise GhnlibError(
            f"initializer '{spec}': no GHN checkpoint at '{path}'; pass the "
            'path of a file written by GraphHyperNetwork.save') from None
    return _load_cached(path, stat.st_mtime_ns, stat.st_size)


@register_initializer('ghn', argument='PATH')
def ghn_init(path: str) -> InitFunction:
    r"""The parameters a :class:`~ghnlib.GraphHyperNetwork` predicts, from
    the checkpoint at :obj:`path`; deterministic.

    A Noise GHN (:obj:`noise_dim` > 0) is used with zero noise, the centre
    of its noise distribution; use :obj:`noise-ghn:PATH` to sample it.

    Args:
        path (str): A file written by :meth:`GraphHyperNetwork.save`.
    """
    spec = f'ghn:{path}'
    ghn = _load_ghn(path, spec)

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        noise = torch.zeros(ghn.noise_dim) if ghn.noise_dim > 0 else None
        return ghn.init_(model, noise, input_shape=input_shape)

    return init


@register_initializer('noise-ghn', argument='PATH')
def noise_ghn_init(path: str) -> InitFunction:
    r"""The parameters a Noise GHN predicts for noise
    :math:`\boldsymbol{\xi} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})` drawn
    from the generator, one draw per call: each call gives another member of
    a diverse ensemble.

    Args:
        path (str): A file written by :meth:`GraphHyperNetwork.save` of a
            GHN with :obj:`noise_dim` > 0.
    """
    spec = f'noise-ghn:{path}'
    ghn = _load_ghn(path, spec)
    if ghn.noise_dim == 0:
        raise GhnlibError(
            f"initializer '{spec}': the GHN at '{path}' has noise_dim=0 and "
            f"cannot sample; use 'ghn:{path}' for its deterministic "
            'prediction, or pass a Noise GHN checkpoint')

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        return ghn.init_(model, generator=generator, input_shape=input_shape)

    return init
