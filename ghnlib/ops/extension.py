r"""The compiled ops of :obj:`ghnlib._C` (``csrc/``), loaded once on first use.

Importing the extension registers ``torch.ops.ghnlib.*``. Without a build
ghnlib silently uses its pure-PyTorch ops; a build that is present but does
not load (for example, compiled against another torch) warns once and falls
back the same way. Setting the environment variable
``GHNLIB_DISABLE_EXTENSION=1`` forces the pure-PyTorch ops, e.g. to compare
or benchmark the two; it is read on every call.
"""
import importlib
import os
import warnings
from types import ModuleType
from typing import Optional, Union

import torch

__all__ = ['backend', 'load_extension', 'DISABLE_EXTENSION_ENV']

DISABLE_EXTENSION_ENV = 'GHNLIB_DISABLE_EXTENSION'
EXTENSION_MODULE = 'ghnlib._C'

_NOT_LOADED_YET = object()
_extension: object = _NOT_LOADED_YET


def _import_extension(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return None
        cause: BaseException = error
    except Exception as error:  # noqa: BLE001 - any load failure falls back
        cause = error
    warnings.warn(
        f'ghnlib: the C++ extension {name} is built but cannot be loaded '
        f'({type(cause).__name__}: {cause}). ghnlib falls back to its '
        f'pure-PyTorch ops (same results, slower). Rebuild the extension '
        f'against the installed torch with `pip install '
        f'--no-build-isolation -e .` in the ghnlib checkout, or set '
        f'{DISABLE_EXTENSION_ENV}=1 to silence this warning.',
        RuntimeWarning, stacklevel=3)
    return None


def load_extension() -> Optional[ModuleType]:
    """The module :obj:`ghnlib._C`, or :obj:`None` where it is not built or
    does not load; the import is tried once per process."""
    global _extension
    if _extension is _NOT_LOADED_YET:
        _extension = _import_extension(EXTENSION_MODULE)
    return _extension


def _disabled() -> bool:
    value = os.environ.get(DISABLE_EXTENSION_ENV, '').strip().lower()
    return value not in ('', '0', 'false', 'no', 'off')


def backend(device: Union[torch.device, str, None] = None) -> str:
    """Which implementation :func:`~ghnlib.ops.tile_normalize` runs:
    :obj:`'extension'` (the compiled op of :obj:`ghnlib._C`) or
    :obj:`'reference'` (pure PyTorch).

    Args:
        device (torch.device or str, optional): The device of the tensors;
            the extension serves CPU tensors, and CUDA tensors where it was
            built with CUDA. (default: :obj:`None`, whether the extension is
            in use at all)
    """
    if _disabled():
        return 'reference'
    extension = load_extension()
    if extension is None:
        return 'reference'
    if device is None:
        return 'extension'
    device_type = torch.device(device).type
    if device_type == 'cpu' or (device_type == 'cuda'
                                and getattr(extension, 'with_cuda', 0)):
        return 'extension'
    return 'reference'
