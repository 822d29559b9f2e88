"""Kernel slices with a known orientation, for memory-layout tests."""
import torch


def standardise(x):
    return (x - x.mean()) / x.std()


def oriented_weight(out_channels=32, in_channels=16, seed=0):
    """A conv weight whose every (out, in) kernel is a horizontal gradient of
    random sign and slope plus a bright top-right corner, written through
    explicit (row, column) indices."""
    generator = torch.Generator().manual_seed(seed)
    slope = torch.randn(out_channels, in_channels, generator=generator)
    weight = 0.1 * torch.randn(out_channels, in_channels, 3, 3,
                               generator=generator)
    for row in range(3):
        for col in range(3):
            weight[:, :, row, col] += slope * (col - 1)
    weight[:, :, 0, 2] += 2.0
    return standardise(weight)


def horizontal_to_vertical(slices):
    """How much more slices change along rows than down columns (> 1 for a
    horizontal gradient, < 1 for its transpose)."""
    horizontal = (slices[:, :, 2] - slices[:, :, 0]).pow(2).mean()
    vertical = (slices[:, 2, :] - slices[:, 0, :]).pow(2).mean()
    return float(horizontal / vertical)
