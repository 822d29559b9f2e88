r"""Fitting decoded tensors to real parameter shapes: slice, tile, normalise.

The definition of the batched tile-and-normalise op
(:func:`tile_normalize_reference`) and its batched form
(:func:`tile_normalize`), which runs the compiled op of ``csrc/`` where it is
built and a grouped pure-PyTorch version otherwise. For one
tensor with source :math:`S \in \mathbb{R}^{s_0 \times s_1 \times s_2
\times s_3}` and target shape :math:`(t_0, t_1, t_2, t_3)`, every output
element reads one source element and is scaled and shifted per tensor:

.. math::
    Y[j_0, j_1, j_2, j_3] = a \cdot S[\pi_0(j_0), \pi_1(j_1), \pi_2(j_2),
    \pi_3(j_3)] + b

    \pi_d(j) = \begin{cases} o_d + j & t_d \leq s_d \\ j \bmod s_d &
    t_d > s_d \end{cases}

Channel dimensions (0, 1) are sliced from the start (:math:`o_d = 0`), the
spatial dimensions (2, 3) around the centre (:math:`o_d = \lfloor (s_d -
t_d) / 2 \rfloor`); a target larger than the source repeats (tiles) it.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from ghnlib.ops.extension import backend

__all__ = ['tile_index', 'tile_normalize_reference', 'tile_normalize']


def tile_index(source: int, target: int, centre: bool,
               device=None) -> Tensor:
    """:math:`\\pi_d` for one dimension: which source index each of the
    :obj:`target` outputs reads."""
    j = torch.arange(target, device=device)
    if target <= source:
        return j + ((source - target) // 2 if centre else 0)
    return j % source


def tile_normalize_reference(src: Tensor, shapes: Sequence[Sequence[int]],
                             scale: Tensor, shift: Tensor = None
                             ) -> List[Tensor]:
    r"""Slices or tiles each of :math:`N` source tensors to its target shape
    and applies :math:`a \cdot x + b`.

    Args:
        src (Tensor): Decoded tensors, shape :math:`[N, s_0, s_1, s_2, s_3]`.
        shapes (Sequence[Sequence[int]]): :math:`N` target shapes of four
            dimensions each.
        scale (Tensor): Per-tensor factors :math:`a`, shape :math:`[N]`.
        shift (Tensor, optional): Per-tensor offsets :math:`b`, shape
            :math:`[N]`. (default: :obj:`None`, zeros)

    Returns:
        A list of :math:`N` tensors of the target shapes (differentiable
        w.r.t. :obj:`src`, :obj:`scale` and :obj:`shift`).
    """
    if src.dim() != 5:
        raise ValueError(f'src must have shape [N, s0, s1, s2, s3], got '
                         f'{tuple(src.shape)}')
    if len(shapes) != src.size(0) or scale.shape != (src.size(0), ):
        raise ValueError(f'expected {src.size(0)} target shapes and scales, '
                         f'got {len(shapes)} and {tuple(scale.shape)}')
    out = []
    sizes = src.shape[1:]
    for n, target in enumerate(shapes):
        if len(target) != 4 or min(target) < 1:
            raise ValueError(f'target shape {tuple(target)} must have four '
                             'positive dimensions')
        y = src[n]
        for d, (s, t) in enumerate(zip(sizes, target)):
            y = y.index_select(d, tile_index(s, t, d >= 2, src.device))
        y = y * scale[n]
        if shift is not None:
            y = y + shift[n]
        out.append(y)
    return out


_EXTENSION_DTYPES = (torch.float32, torch.float64, torch.float16,
                    torch.bfloat16)


def tile_normalize(src: Tensor, shapes: Sequence[Sequence[int]], scale: Tensor,
                   shift: Tensor = None, *, out: Tensor = None
                   ) -> List[Tensor]:
    r"""The same as :func:`tile_normalize_reference`, batched: one call of
    the compiled op ``torch.ops.ghnlib.tile_normalize`` where the extension
    :obj:`ghnlib._C` serves the device (see :func:`~ghnlib.ops.backend`),
    else pure PyTorch with tensors of the same target shape fitted together.

    With the extension the results are views into one flat buffer (whose
    backward is one gather per source element). The dtype is that of
    :obj:`src`, :obj:`scale` and :obj:`shift` promoted together.

    Args and returns as :func:`tile_normalize_reference`, and:

    Args:
        out (Tensor, optional): A contiguous 1-D tensor of the results'
            total size and dtype to write into (without gradient); the
            results are then views of it. (default: :obj:`None`)
    """
    targets = _checked_targets(src, shapes, scale, shift)
    dtype = src.dtype if shift is None else torch.promote_types(
        src.dtype, shift.dtype)
    dtype = torch.promote_types(dtype, scale.dtype)
    if targets.size(0) == 0:
        return []
    if out is not None:
        total = int(targets.prod(1).sum())
        if (out.shape != (total, ) or not out.is_contiguous()
                or out.dtype != dtype or out.device != src.device):
            raise ValueError(
                f'tile_normalize: out must be a contiguous 1-D {dtype} tensor '
                f'of {total} elements on {src.device}, got '
                f'{tuple(out.shape)} {out.dtype} on {out.device}.')
    if dtype in _EXTENSION_DTYPES and backend(src.device) == 'extension':
        # Host tensors: the op reads the layout without a device
        # synchronisation.
        offsets = torch.zeros(targets.size(0) + 1, dtype=torch.long)
        torch.cumsum(targets.prod(1), 0, out=offsets[1:])
        args = (src.to(dtype), targets, offsets, scale.to(dtype),
                None if shift is None else shift.to(dtype))
        if out is None:
            flat = torch.ops.ghnlib.tile_normalize(*args)
        else:
            flat = torch.ops.ghnlib.tile_normalize.out(*args, out=out)
        return torch.ops.ghnlib.unflatten_views(flat, targets)
    fitted = _tile_normalize_grouped(
        src, [tuple(target) for target in targets.tolist()], scale, shift)
    if out is None:
        return fitted
    torch.cat([y.reshape(-1) for y in fitted], out=out)
    return [view.view(y.shape) for view, y in zip(
        out.split([y.numel() for y in fitted]), fitted)]


def _checked_targets(src: Tensor, shapes: Sequence[Sequence[int]],
                     scale: Tensor, shift: Tensor) -> Tensor:
    """The target shapes as an int64 tensor [N, 4] on the host."""
    if src.dim() != 5:
        raise ValueError(f'tile_normalize: src must have shape [N, s0, s1, '
                         f's2, s3], got {tuple(src.shape)}; view lower-rank '
                         f'decoded tensors with size-1 dimensions.')
    num_tensors = src.size(0)
    if len(shapes) != num_tensors:
        raise ValueError(f'tile_normalize: expected {num_tensors} target '
                         f'shapes (one per source tensor in src), got '
                         f'{len(shapes)}.')
    for name, values in (('scale', scale), ('shift', shift)):
        if values is not None and values.shape != (num_tensors, ):
            raise ValueError(f'tile_normalize: {name} must have shape '
                             f'[N] = [{num_tensors}] (one value per source '
                             f'tensor), got {list(values.shape)}.')
    if min(src.shape[1:], default=1) < 1:
        raise ValueError(f'tile_normalize: src has shape {tuple(src.shape)}, '
                         f'but every source size s0..s3 must be at least 1 '
                         f'to be sliced or tiled.')
    try:
        targets = torch.as_tensor(shapes, dtype=torch.long, device='cpu')
    except (TypeError, ValueError, RuntimeError):
        targets = None
    if targets is not None and targets.numel() == 0:
        targets = targets.reshape(-1, 4)
    if (targets is None or targets.shape != (num_tensors, 4)
            or bool((targets < 1).any())):
        for n, target in enumerate(shapes):
            target = tuple(int(t) for t in target)
            if len(target) != 4 or min(target) < 1:
                raise ValueError(
                    f'tile_normalize: target shape {n}, {target}, must have '
                    f'four positive dimensions; pad lower-rank shapes with '
                    f'1s, e.g. (t, 1, 1, 1) for a bias.')
        raise ValueError(f'tile_normalize: shapes must be {num_tensors} '
                         f'sequences of four positive ints, got {shapes!r}.')
    return targets


def _tile_normalize_grouped(src: Tensor, targets: List[Tuple[int, ...]],
                            scale: Tensor, shift: Tensor) -> List[Tensor]:
    groups = {}
    for n, target in enumerate(targets):
        groups.setdefault(target, []).append(n)
    out: List[Tensor] = [None] * len(targets)
    sizes = src.shape[1:]
    for target, members in groups.items():
        index = torch.tensor(members, device=src.device)
        y = src if len(members) == src.size(0) else src.index_select(0, index)
        # Slice first (views), normalise the small block, then tile by
        # repeating whole blocks: one pass over the output.
        for d, (s, t) in enumerate(zip(sizes, target)):
            if t <= s:
                y = y.narrow(d + 1, (s - t) // 2 if d >= 2 else 0, t)
        view = (-1, 1, 1, 1, 1)
        y = y * scale.index_select(0, index).view(view)
        if shift is not None:
            y = y + shift.index_select(0, index).view(view)
        repeats = [1] + [-(-t // s) if t > s else 1
                         for s, t in zip(sizes, target)]
        if max(repeats) > 1:
            y = y.repeat(repeats)
            for d, t in enumerate(target):
                if y.size(d + 1) != t:
                    y = y.narrow(d + 1, 0, t)
        for k, n in enumerate(members):
            out[n] = y[k]
    return out
