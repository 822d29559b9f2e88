r"""Giving freed heap memory back to the operating system."""
import ctypes
import ctypes.util
import functools
import sys
from typing import Callable, Optional

__all__ = ['release_freed_memory']


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    if not sys.platform.startswith('linux'):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    r"""Returns the free pages of the C heap to the operating system.

    glibc serves allocations of a few megabytes from its heap once larger
    blocks have been freed, and keeps the freed pages resident: after an
    operation that allocates and frees many such temporaries (building the
    sweep schedule of a large batch sorts and gathers millions of edge
    indices), the process's resident memory stays tens of megabytes above
    what it uses. ``malloc_trim(0)`` gives those pages back; it takes about
    a millisecond.

    Returns:
        :obj:`True` where glibc's ``malloc_trim`` was called, :obj:`False`
        on other platforms (nothing to do there).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
