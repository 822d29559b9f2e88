r"""Batched tensor ops of the hypernetwork: fitting decoded tensors to
parameter shapes (:func:`tile_normalize_reference`)."""
from ghnlib.ops.tile_normalize import (tile_index, tile_normalize,
                                      tile_normalize_reference)

__all__ = ['tile_normalize', 'tile_normalize_reference', 'tile_index']
