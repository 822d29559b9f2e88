import pytest
import torch

from torchvision_shim import import_torchvision


@pytest.fixture(autouse=True, scope='session')
def single_thread():
    # The tests' models are tiny: intra-op threads gain nothing on them, and
    # OpenMP's spinning workers slow them down many times on a shared
    # machine. Tests of multi-threaded kernels set their own thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def torchvision():
    """torchvision, importable next to a CPU-only torch."""
    return import_torchvision()
