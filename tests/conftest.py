import pytest

from torchvision_shim import import_torchvision


@pytest.fixture(scope='session')
def torchvision():
    """torchvision, importable next to a CPU-only torch."""
    return import_torchvision()
