r"""Gathering segments of index arrays in steps of bounded size."""
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ghnlib.nn.index_dtypes import index_dtype

__all__ = ['segment_gather']

# Entries gathered per step: the temporaries of a step stay well under a
# megabyte whatever the batch, so each step reuses the memory the previous
# one freed instead of the heap growing with the batch (and staying
# resident after it).
_STEP = 1 << 14


def segment_gather(arrays: Sequence[Tensor], starts: Tensor, lengths: Tensor,
                   shift: Optional[Tensor] = None) -> List[Tensor]:
    r"""Concatenates segments of one-dimensional arrays: for each array
    :math:`\mathbf{a}`,

    .. math::
        \mathbf{y} = \big\Vert_{s} \big(a_{t_s}, a_{t_s + 1}, \ldots,
        a_{t_s + n_s - 1}\big) + c_s

    with start :math:`t_s`, length :math:`n_s` and shift :math:`c_s` of
    segment :math:`s` (the shift is added to the first array only). The
    same as indexing with ``repeat_interleave``-built indices, in steps of
    whole segments of about 16 000 entries, so that no temporary grows
    with the output.

    Args:
        arrays (Sequence[Tensor]): The arrays to gather from, each
            one-dimensional.
        starts (LongTensor): :math:`t_s`. Shape :math:`[S]`.
        lengths (LongTensor): :math:`n_s`. Shape :math:`[S]`.
        shift (Tensor, optional): :math:`c_s`, cast to the first array's
            dtype. Shape :math:`[S]`. (default: :obj:`None`, none)

    Returns:
        One tensor per array, of its dtype, of length
        :math:`\sum_s n_s`.
    """
    total = int(lengths.sum())
    gathered = [torch.empty(total, dtype=array.dtype) for array in arrays]
    if total == 0:
        return gathered
    ends = torch.cumsum(lengths, 0)
    begins = ends - lengths
    cuts = torch.searchsorted(
        ends, torch.arange(_STEP, max(total, _STEP), _STEP), right=True)
    bounds = torch.unique_consecutive(torch.cat([
        torch.zeros(1, dtype=torch.long), cuts,
        torch.tensor([lengths.numel()])])).tolist()
    dtype = index_dtype(max(total, max(array.numel() for array in arrays)))
    begin_at, end_at = begins.tolist(), ends.tolist()
    for first, last in zip(bounds[:-1], bounds[1:]):
        lo, hi = begin_at[first], end_at[last - 1]
        step_lengths = lengths[first:last]
        index = torch.repeat_interleave(
            (starts[first:last] - (begins[first:last] - lo)).to(dtype),
            step_lengths, output_size=hi - lo)
        index += torch.arange(hi - lo, dtype=dtype)
        for array, out in zip(arrays, gathered):
            torch.index_select(array, 0, index, out=out[lo:hi])
        if shift is not None:
            gathered[0][lo:hi] += torch.repeat_interleave(
                shift[first:last].to(gathered[0].dtype), step_lengths,
                output_size=hi - lo)
    return gathered
