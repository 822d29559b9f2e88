import pytest
import torch

import ghnlib.nn.segment_gather as module
from ghnlib.nn.segment_gather import segment_gather


def expected_gather(array, starts, lengths, shift=None):
    parts = [array[s:s + n] + (0 if shift is None else shift[i])
             for i, (s, n) in enumerate(zip(starts.tolist(),
                                            lengths.tolist()))]
    return torch.cat(parts) if parts else array[:0]


@pytest.mark.parametrize('step', [1 << 14, 7, 1])
def test_equals_concatenated_slices(monkeypatch, step):
    # Small steps: segments are gathered over many steps, some longer than
    # a step, some empty.
    monkeypatch.setattr(module, '_STEP', step)
    generator = torch.Generator().manual_seed(0)
    values = torch.randint(0, 1000, (500, ), generator=generator,
                           dtype=torch.int32)
    dist = torch.randint(0, 50, (500, ), generator=generator).to(torch.uint8)
    lengths = torch.randint(0, 30, (40, ), generator=generator)
    lengths[[0, 5, 39]] = 0
    starts = (torch.rand(40, generator=generator) * (500 - lengths)).long()
    shift = torch.randint(0, 10_000, (40, ), generator=generator)
    src, lens = segment_gather([values, dist], starts, lengths, shift)
    assert src.dtype == torch.int32 and lens.dtype == torch.uint8
    assert torch.equal(src, expected_gather(values, starts, lengths,
                                            shift.int()))
    assert torch.equal(lens, expected_gather(dist, starts, lengths))
    plain, = segment_gather([values], starts, lengths)
    assert torch.equal(plain, expected_gather(values, starts, lengths))


def test_nothing_to_gather():
    out, = segment_gather([torch.arange(5)], torch.zeros(3, dtype=torch.long),
                          torch.zeros(3, dtype=torch.long))
    assert out.shape == (0, ) and out.dtype == torch.long
