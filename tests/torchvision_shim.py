r"""Importing torchvision next to a CPU-only torch, for the tests, benchmarks
and examples of this repository.

The torchvision wheels on PyPI are CUDA builds. With a CPU-only torch their
compiled ops fail to load, and ``import torchvision`` then stops at
``operator torchvision::nms does not exist``: its Python code registers
fake kernels for ``nms``/``qnms`` whose schemas the missing library would have
defined. ghnlib itself never needs torchvision; the tests use torchvision's
model definitions (pure PyTorch), so defining the two schemas, only when the
import fails that way, is enough for them.
"""
import importlib
import sys

import torch

__all__ = ['import_torchvision']

_SCHEMAS = {
    'nms': '(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms': ('(Tensor qdets, Tensor scores, Tensor qscales, '
             'Tensor qzero_points, float iou_threshold) -> Tensor'),
}

# Keeps the library that owns the schemas alive for the whole process.
_LIBRARY = []


def import_torchvision():
    """Returns the ``torchvision`` module, importable with a CPU-only torch.

    Raises:
        ImportError: If torchvision is not installed.
    """
    try:
        return importlib.import_module('torchvision')
    except RuntimeError as error:
        if 'torchvision::nms' not in str(error):
            raise
    for name in [n for n in sys.modules
                 if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    if not _LIBRARY:
        library = torch.library.Library('torchvision', 'FRAGMENT')
        for name, schema in _SCHEMAS.items():
            library.define(f'{name}{schema}')
        _LIBRARY.append(library)
    return importlib.import_module('torchvision')
