r"""Batched tensor ops of the hypernetwork: fitting decoded tensors to
parameter shapes (:func:`tile_normalize`), compiled in :obj:`ghnlib._C`
where it is built (:func:`backend`), with the pure-PyTorch definition
:func:`tile_normalize_reference`."""
from ghnlib.ops.extension import backend
from ghnlib.ops.tile_normalize import (tile_index, tile_normalize,
                                      tile_normalize_reference)

__all__ = ['tile_normalize', 'tile_normalize_reference', 'tile_index',
           'backend']
