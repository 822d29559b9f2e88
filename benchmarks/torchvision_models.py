"""torchvision for the benchmark scripts, through the tests' import
workaround (a CUDA torchvision wheel next to a CPU torch)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, 'tests'))

from torchvision_shim import import_torchvision  # noqa: E402

__all__ = ['import_torchvision']
