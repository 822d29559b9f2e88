r"""Batched tensor ops of the hypernetwork: fitting decoded tensors to
parameter shapes (:func:`tile_normalize`), compiled in :obj:`ghnlib._C`
where it is built (:func:`backend`), with the pure-PyTorch definition
:func:`tile_normalize_reference`; and one inference sweep of the GHN's
gated GNN (:func:`gated_gnn_sweep`), compiled only, with the check of its
layout (:func:`check_sweep_layout`)."""
from ghnlib.ops.extension import backend
from ghnlib.ops.gated_gnn_sweep import (check_sweep_layout, gated_gnn_sweep,
                                       sweep_kernel_applies)
from ghnlib.ops.tile_normalize import (tile_index, tile_normalize,
                                      tile_normalize_reference)

__all__ = ['tile_normalize', 'tile_normalize_reference', 'tile_index',
           'backend', 'gated_gnn_sweep', 'check_sweep_layout',
           'sweep_kernel_applies']
