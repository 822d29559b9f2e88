r"""Atomic writes and safe reads of training checkpoints and safetensors
files."""
import os
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch

from ghnlib.errors import GhnlibError

__all__ = ['atomic_write', 'save_state', 'load_state', 'read_safetensors']

PathLike = Union[str, os.PathLike]


def _fsync_directory(directory: str) -> None:
    # The rename itself is durable only once the directory entry is flushed;
    # some platforms (Windows) cannot open a directory for that.
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Calls :obj:`write` on a temporary file next to :obj:`path`, flushes it
    to disk, then renames it onto :obj:`path`: readers see the old file or
    the new one, never a partial one, even after a crash. The one writer
    every file of ghnlib goes through."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f'.{os.path.basename(path)}.{os.getpid()}.tmp')
    try:
        write(tmp)
        with open(tmp, 'rb') as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(directory)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_state(state: Any, path: PathLike) -> None:
    """Writes a training state (tensors, numbers, strings, lists, dicts)
    atomically with :func:`torch.save`."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: PathLike, what: str = 'training checkpoint') -> Any:
    """Reads a file written by :func:`save_state` without executing pickled
    code (``weights_only=True``); a missing, truncated or foreign file raises
    :class:`~ghnlib.errors.GhnlibError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GhnlibError(f"no {what} at '{path}'")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise GhnlibError(f"'{path}' is not a readable {what} "
                          f'({type(error).__name__}: {error}); delete it to '
                          'start over') from error


def read_safetensors(path: PathLike, what: str, *,
                     file_format: Optional[str] = None, hint: str = ''
                     ) -> Tuple[Dict[str, str], Dict[str, torch.Tensor]]:
    """The metadata and every tensor of a safetensors file (nothing pickled
    is ever read). An unreadable file, or one whose metadata ``format`` is
    not :obj:`file_format`, raises :class:`~ghnlib.errors.GhnlibError`
    naming :obj:`what` was expected; :obj:`hint` is appended to the message
    of an unreadable file."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework='pt') as reader:
            metadata = reader.metadata() or {}
            if file_format is not None and metadata.get('format') != file_format:
                raise GhnlibError(f"'{path}' is a safetensors file but not a "
                                  f'{what}')
            tensors = {k: reader.get_tensor(k) for k in reader.keys()}
    except GhnlibError:
        raise
    except Exception as error:
        raise GhnlibError(f"'{path}' is not a readable {what} "
                          f'({type(error).__name__}: {error}){hint}') from error
    return metadata, tensors
