r"""Importing torchvision next to a CPU-only torch.

The torchvision wheels on PyPI are CUDA builds. With a CPU-only torch their
compiled ops fail to load, and ``import torchvision`` then stops at
``operator torchvision::nms does not exist``: its Python code registers
fake kernels for ``nms``/``qnms`` whose schemas the missing library would have
defined. ghnlib itself never needs torchvision; its tests, the CLI and the
examples use torchvision's model definitions (pure PyTorch), so defining the
two schemas, only when the import would fail, is enough for those.
"""
import importlib

import torch

__all__ = ['import_torchvision']

_SCHEMAS = {
    'nms': '(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms': ('(Tensor qdets, Tensor scores, Tensor qscales, '
             'Tensor qzero_points, float iou_threshold) -> Tensor'),
}


def _has_schema(name: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f'torchvision::{name}', '')
        return True
    except RuntimeError:
        return False


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
    import sys
    for name in [n for n in sys.modules if n == 'torchvision' or n.startswith('torchvision.')]:
        del sys.modules[name]
    for name, schema in _SCHEMAS.items():
        if not _has_schema(name):
            torch.library.define(f'torchvision::{name}', schema)
    return importlib.import_module('torchvision')
