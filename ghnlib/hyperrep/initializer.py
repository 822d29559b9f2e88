r"""The :obj:`hyperrep:DIR` initialisation scheme."""
import functools
import os
from typing import Optional, Sequence

import torch
from torch import nn

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep.hyper_representation import FILE, HyperRepresentation
from ghnlib.init import register_initializer

__all__ = ['hyperrep_init', 'load_hyperrep']


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int) -> HyperRepresentation:
    return HyperRepresentation.load(os.path.dirname(path))


def load_hyperrep(directory: str) -> HyperRepresentation:
    r"""The :class:`HyperRepresentation` saved in :obj:`directory`, read once
    per version of its file (a rewritten file is read again)."""
    path = os.path.join(os.path.abspath(os.path.expanduser(directory)), FILE)
    try:
        stat = os.stat(path)
    except OSError:
        raise GhnlibError(
            f"initializer 'hyperrep:{directory}': no hyper-representation at "
            f"'{path}'; pass a folder written by HyperRepresentation.save "
            '(`ghnlib train-hyperrep ZOO --out DIR`)') from None
    return _load_cached(path, stat.st_mtime_ns, stat.st_size)


@register_initializer('hyperrep', argument='DIR')
def hyperrep_init(directory: str):
    r"""Builds the :obj:`hyperrep:DIR` scheme: every conv and linear layer
    gets weights decoded from a latent sampled from the KDE over the most
    accurate 30 % of the zoo (:math:`S_{\mathrm{KDE30}}`) of the
    hyper-representation in :obj:`directory`
    (:meth:`HyperRepresentation.init_`), one draw per call. The model must
    have the zoo's architecture.

    Args:
        directory (str): A folder written by
            :meth:`HyperRepresentation.save`.
    """
    hyper = load_hyperrep(directory)

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = (1, 3, 32, 32)) -> nn.Module:
        # The graph is read at the zoo's own input shape: the model must be
        # of the zoo's architecture anyway.
        return hyper.init_(model, generator)

    return init
