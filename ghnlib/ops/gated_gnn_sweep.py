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

The op checks the shapes, dtypes and devices of its arguments on every call
but reads none of their values: :func:`check_sweep_layout` checks those (a
permutation of the nodes, pointers from 0 to the number of edges, node ids
in range, path lengths of at least 1), where a layout is built or, by
default, in :func:`gated_gnn_sweep`.
"""
from typing import Sequence

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.ops.extension import backend, load_extension

__all__ = ['gated_gnn_sweep', 'check_sweep_layout', 'sweep_kernel_applies']

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
                    gru: Sequence[Tensor], *,
                    check_layout: bool = True) -> Tensor:
    r"""Runs one sweep; returns the new node states (a new tensor).

    Args:
        h (Tensor): Node states, float32 or float64. Shape :math:`[N, H]`.
        node_order, level_ptr, real_ptr, real_src, virtual_ptr:
            The sweep's layout, int64 CPU tensors, as in
            :class:`ghnlib.nn.compressed_sweep.CompressedSweep`.
        virtual_src (Tensor): Sources of the virtual edges, int32 or int64.
            Shape :math:`[V]`.
        virtual_dist (Tensor): Their lengths :math:`s_{uv} \geq 1`, of the
            dtype of :obj:`virtual_src`. Shape :math:`[V]`.
        mlp (Sequence[Tensor]): ``[weight1, bias1, weight2, bias2]`` of the
            message MLP (Linear → ReLU → Linear, :math:`H \to H \to H`).
        mlp_ve (Sequence[Tensor]): The same for virtual edges.
        gru (Sequence[Tensor]): ``[weight_ih, weight_hh, bias_ih, bias_hh]``
            of a :class:`torch.nn.GRUCell`.
        check_layout (bool, optional): Check the layout's values with
            :func:`check_sweep_layout` first. A caller that checked its
            layout when it built it turns this off: the op itself reads
            every index unchecked, and a wrong one reads out of bounds.
            (default: :obj:`True`)

    Raises:
        ValueError: If an argument has the wrong shape, dtype or device, or
            (with :obj:`check_layout`) the layout is inconsistent.
    """
    if load_extension() is None:
        raise GhnlibError('gated_gnn_sweep needs the C++ extension ghnlib._C; '
                          'build it with `pip install --no-build-isolation '
                          '-e .`, or run ghnlib.nn.GatedGNN, which falls back '
                          'to PyTorch ops')
    if check_layout:
        check_sweep_layout(node_order, level_ptr, real_ptr, real_src,
                           virtual_ptr, virtual_src, virtual_dist)
    return torch.ops.ghnlib.gated_gnn_sweep(
        h, node_order, level_ptr, real_ptr, real_src, virtual_ptr,
        virtual_src, virtual_dist, list(mlp), list(mlp_ve), list(gru))


def check_sweep_layout(node_order: Tensor, level_ptr: Tensor,
                       real_ptr: Tensor, real_src: Tensor,
                       virtual_ptr: Tensor, virtual_src: Tensor,
                       virtual_dist: Tensor) -> None:
    r"""Checks the values of a sweep's layout (the arrays of
    :class:`ghnlib.nn.compressed_sweep.CompressedSweep`), which the compiled op
    reads unchecked: once where a layout is built, or on every call of
    :func:`gated_gnn_sweep` (its default).

    With :math:`N` the length of :obj:`node_order`, :math:`E` of
    :obj:`real_src` and :math:`V` of :obj:`virtual_src`: :obj:`node_order`
    is a permutation of :math:`\{0, \dots, N - 1\}`; :obj:`level_ptr`,
    :obj:`real_ptr` (:math:`N + 1` entries) and :obj:`virtual_ptr`
    (:math:`N + 1` entries) never decrease and run from 0 to :math:`N`,
    :math:`E` and :math:`V`; every source is a node id; every entry of
    :obj:`virtual_dist` (:math:`V` of them) is at least 1.

    Args:
        node_order, level_ptr, real_ptr, real_src, virtual_ptr,
        virtual_src, virtual_dist (Tensor): The layout, 1-D integer tensors
            on any device, as :func:`gated_gnn_sweep` takes them.

    Raises:
        ValueError: Naming the array, the entry at fault and what it must
            be.
    """
    arrays = dict(node_order=node_order, level_ptr=level_ptr,
                  real_ptr=real_ptr, real_src=real_src,
                  virtual_ptr=virtual_ptr, virtual_src=virtual_src,
                  virtual_dist=virtual_dist)
    for name, array in arrays.items():
        if (array.dim() != 1 or array.is_floating_point()
                or array.is_complex() or array.dtype == torch.bool):
            raise ValueError(
                f'gated_gnn_sweep: {name} must be a 1-D integer tensor, got '
                f'{array.dtype} of shape {list(array.shape)}.')
    num_nodes = node_order.numel()
    for name, array, length in (('real_ptr', real_ptr, num_nodes + 1),
                                ('virtual_ptr', virtual_ptr, num_nodes + 1),
                                ('virtual_dist', virtual_dist,
                                 virtual_src.numel())):
        if array.numel() != length:
            raise ValueError(
                f'gated_gnn_sweep: {name} must have {length} entries (node_'
                f'order has {num_nodes} nodes, virtual_src '
                f'{virtual_src.numel()} edges), got {array.numel()}.')
    _check_node_ids('node_order', node_order, num_nodes)
    repeated = torch.nonzero(
        torch.bincount(node_order.long(), minlength=num_nodes) > 1)
    if repeated.numel() > 0:
        raise ValueError(
            f'gated_gnn_sweep: node_order must visit every node once, but '
            f'node {int(repeated[0])} comes twice.')
    _check_pointer('level_ptr', level_ptr, num_nodes)
    _check_pointer('real_ptr', real_ptr, real_src.numel())
    _check_node_ids('real_src', real_src, num_nodes)
    _check_pointer('virtual_ptr', virtual_ptr, virtual_src.numel())
    _check_node_ids('virtual_src', virtual_src, num_nodes)
    if virtual_dist.numel() > 0:
        shortest = int(virtual_dist.min())
        if shortest < 1:
            raise ValueError(
                f'gated_gnn_sweep: virtual_dist holds {shortest}, which is '
                f'not a path length (at least 1); lengths count the edges of '
                f'the shortest path from source to target.')


def _check_node_ids(name: str, index: Tensor, num_nodes: int):
    if index.numel() == 0:
        return
    low, high = torch.aminmax(index)
    if int(low) >= 0 and int(high) < num_nodes:
        return
    position = int(torch.nonzero((index < 0) | (index >= num_nodes))[0])
    raise ValueError(
        f'gated_gnn_sweep: {name}[{position}] = {int(index[position])} is '
        f'not a node id in [0, {num_nodes}).')


def _check_pointer(name: str, ptr: Tensor, num_entries: int):
    """A CSR pointer: starts at 0, never decreases, ends at
    :obj:`num_entries`."""
    if ptr.numel() == 0 or int(ptr[0]) != 0 or int(ptr[-1]) != num_entries:
        got = (f'{int(ptr[0])} to {int(ptr[-1])}' if ptr.numel() > 0
               else 'no entries')
        raise ValueError(f'gated_gnn_sweep: {name} must run from 0 to '
                         f'{num_entries}, got {got}.')
    drops = torch.nonzero(ptr[1:] < ptr[:-1])
    if drops.numel() > 0:
        i = int(drops[0]) + 1
        raise ValueError(
            f'gated_gnn_sweep: {name} must never decrease, but {name}[{i}] = '
            f'{int(ptr[i])} comes after {name}[{i - 1}] = {int(ptr[i - 1])}.')
