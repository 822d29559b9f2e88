import platform

import pytest
import torch

from ghnlib.utils.memory import release_freed_memory

GLIBC = platform.libc_ver()[0] == 'glibc'


def anonymous_mb():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('RssAnon:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no RssAnon in /proc/self/status')


@pytest.mark.skipif(not GLIBC, reason='malloc_trim is glibc\'s')
def test_freed_heap_blocks_leave_the_resident_set():
    # Freeing a large block raises glibc's mmap threshold, so the next
    # megabyte-sized blocks come from the heap; the last one, kept, pins the
    # heap's top, so the freed ones below it stay resident until trimmed.
    large = torch.ones(32 * 2**18)  # 32 MB
    del large
    blocks = [torch.ones(2**18) for _ in range(96)]  # 1 MB each
    kept = blocks[-1]
    del blocks
    before = anonymous_mb()
    assert release_freed_memory()
    assert anonymous_mb() < before - 48
    assert bool((kept == 1).all())


def test_elsewhere_it_does_nothing(monkeypatch):
    from ghnlib.utils import memory
    monkeypatch.setattr(memory, '_malloc_trim', lambda: None)
    assert memory.release_freed_memory() is False
