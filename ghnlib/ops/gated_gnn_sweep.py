r"""One sweep of the GHN's gated graph neural network as one compiled op
(``torch.ops.ghnlib.gated_gnn_sweep`` of ``csrc/``), for inference on CPU.

:class:`ghnlib.nn.GatedGNN` runs it whenever no gradient is needed and the
extension serves the tensors (:func:`sweep_kernel_applies`); the
level-by-level PyTorch sweep, which it replaces there, defines the result.
The op updates the nodes in :obj:`node_order`, level by level (the nodes of
one level in parallel), each with

.. math::
    \mathbf{m}_v = \sum_{u \in \mathcal{N}_v} \mathrm{MLP}(\mathbf{h}_u)
    + \sum_{u \in \mathcal{N}_{v,\mathrm{virtual}}}
    \frac{\mathrm{MLP}_{\mathrm{ve}}(\mathbf{h}_u)}{s_{uv}}, \qquad
    \mathbf{h}_v \leftarrow \mathrm{GRU}(\mathbf{m}_v, \mathbf{h}_v)

where the sources were updated earlier in the same sweep.
"""
from typing import Sequence

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.ops.extension import backend, load_extension

__all__ = ['gated_gnn_sweep', 'sweep_kernel_applies']

_DTYPES = (torch.float32, torch.float64)


def sweep_kernel_applies(h: Tensor, parameters: Sequence[Tensor]) -> bool:
    """Whether :func:`gated_gnn_sweep` can replace the PyTorch sweep: CPU
    float32/float64 tensors, the extension loaded, and no gradient asked
    for (the op has no backward)."""
    if h.device.type != 'cpu' or h.dtype not in _DTYPES:
        return False
    if torch.is_grad_enabled() and (h.requires_grad or any(
            p.requires_grad for p in parameters)):
        return False
    return (backend('cpu') == 'extension'
            and hasattr(torch.ops.ghnlib, 'gated_gnn_sweep'))


def gated_gnn_sweep(h: Tensor, node_order: Tensor, level_ptr: Tensor,
                    real_ptr: Tensor, real_src: Tensor, virtual_ptr: Tensor,
                    virtual_src: Tensor, virtual_dist: Tensor,
                    mlp: Sequence[Tensor], mlp_ve: Sequence[Tensor],
                    gru: Sequence[Tensor]) -> Tensor:
    r"""Runs one sweep; returns the new node states (a new tensor).

    Args:
        h (Tensor): Node states, float32 or float64. Shape :math:`[N, H]`.
        node_order, level_ptr, real_ptr, real_src, virtual_ptr:
            The sweep's layout, int64 CPU tensors, as in
            :class:`ghnlib.nn.gated_gnn.CompressedSweep`.
        virtual_src (Tensor): Sources of the virtual edges, int32 or int64.
            Shape :math:`[V]`.
        virtual_dist (Tensor): Their lengths :math:`s_{uv} \geq 1`, of the
            dtype of :obj:`virtual_src`. Shape :math:`[V]`.
        mlp (Sequence[Tensor]): ``[weight1, bias1, weight2, bias2]`` of the
            message MLP (Linear → ReLU → Linear, :math:`H \to H \to H`).
        mlp_ve (Sequence[Tensor]): The same for virtual edges.
        gru (Sequence[Tensor]): ``[weight_ih, weight_hh, bias_ih, bias_hh]``
            of a :class:`torch.nn.GRUCell`.
    """
    if load_extension() is None:
        raise GhnlibError('gated_gnn_sweep needs the C++ extension ghnlib._C; '
                          'build it with `pip install --no-build-isolation '
                          '-e .`, or run ghnlib.nn.GatedGNN, which falls back '
                          'to PyTorch ops')
    return torch.ops.ghnlib.gated_gnn_sweep(
        h, node_order, level_ptr, real_ptr, real_src, virtual_ptr,
        virtual_src, virtual_dist, list(mlp), list(mlp_ve), list(gru))
