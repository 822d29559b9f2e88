r"""The narrowest integer types of the index arrays of a sweep schedule:
virtual edges outnumber nodes about a hundredfold, so their arrays are kept
as narrow as their values allow."""
import torch

__all__ = ['index_dtype', 'length_dtype', 'sort_key_dtype']


def index_dtype(bound: int) -> torch.dtype:
    """``int32`` where it holds every index below :obj:`bound`, else
    ``int64``."""
    return torch.int32 if bound <= torch.iinfo(torch.int32).max \
        else torch.long


def length_dtype(longest: int) -> torch.dtype:
    """The narrowest integer type holding path lengths up to
    :obj:`longest`."""
    for dtype in (torch.uint8, torch.int16, torch.int32):
        if longest <= torch.iinfo(dtype).max:
            return dtype
    return torch.long


def sort_key_dtype(bound: int) -> torch.dtype:
    """The narrowest signed integer type holding ``[0, bound)``: sorting
    narrow keys is several times faster than sorting ``int64``."""
    if bound <= torch.iinfo(torch.int16).max:
        return torch.int16
    if bound <= torch.iinfo(torch.int32).max:
        return torch.int32
    return torch.long
