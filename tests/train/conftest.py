import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def single_thread():
    # Tiny models gain nothing from intra-op threads, and OpenMP's spinning
    # workers slow them down many times on small shared machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
