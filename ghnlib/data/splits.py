r"""Seeded, disjoint, class-stratified splits of an :class:`ImageDataset`."""
import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from ghnlib.data.image_dataset import ImageDataset
from ghnlib.errors import GhnlibError

__all__ = ['split_dataset']


def apportion(total: int, weights: Sequence[float]) -> List[int]:
    """Splits :obj:`total` into integers proportional to :obj:`weights` that
    sum to :obj:`total` (largest remainder; ties go to the earlier
    entry)."""
    weight_sum = float(sum(weights))
    if total == 0 or weight_sum <= 0:
        return [0] * len(weights)
    quotas = [total * w / weight_sum for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(weights)),
                          key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[:total - sum(counts)]:
        counts[i] += 1
    return counts


def split_indices(labels: Tensor, sizes: Sequence[int], *, seed: int = 0,
                  stratify: bool = True) -> List[Tensor]:
    """Disjoint sorted index tensors of the given :obj:`sizes` (which sum to
    ``len(labels)``), drawn at random with :obj:`seed`; with
    :obj:`stratify`, each part takes the classes in the proportions of what
    is left to split."""
    generator = torch.Generator().manual_seed(seed)
    if not stratify:
        order = torch.randperm(labels.numel(), generator=generator)
        return [part.sort().values for part in order.split(list(sizes))]

    classes = labels.unique(sorted=True)
    pools = [(labels == c).nonzero().view(-1) for c in classes.tolist()]
    pools = [pool[torch.randperm(pool.numel(), generator=generator)]
             for pool in pools]
    taken = [0] * len(pools)
    parts = []
    for part_index, size in enumerate(sizes):
        remaining = [pool.numel() - t for pool, t in zip(pools, taken)]
        if part_index == len(sizes) - 1:
            per_class = remaining
        else:
            # Apportioning the remainder (not the whole) keeps every class
            # count within its pool, so the last part is never short.
            per_class = apportion(size, remaining)
        chunks = []
        for c, count in enumerate(per_class):
            chunks.append(pools[c][taken[c]:taken[c] + count])
            taken[c] += count
        parts.append(torch.cat(chunks).sort().values)
    return parts


def split_dataset(dataset: ImageDataset, fractions: Sequence[float], *,
                  seed: int = 0,
                  stratify: bool = True) -> Tuple[ImageDataset, ...]:
    r"""Splits :obj:`dataset` at random into disjoint parts that together
    cover it, part :math:`k` holding :math:`\approx f_k N` images.

    Part sizes are the largest-remainder rounding of :math:`f_k N`. With
    :obj:`stratify`, each part takes every class in proportion to what is
    left of it, so part :math:`k` holds about :math:`f_k N_c` images of
    class :math:`c` (the first part rounds each class count; later parts
    drift by at most an image or so) and keeps the class balance of the
    whole. The same :obj:`seed` always gives the same parts, each in dataset
    order.

    Args:
        dataset (ImageDataset): The images to split.
        fractions (Sequence[float]): Positive :math:`f_k`, summing to 1.
        seed (int, optional): Seed of the random assignment.
            (default: :obj:`0`)
        stratify (bool, optional): Keep class proportions in every part.
            (default: :obj:`True`)
    """
    if not isinstance(dataset, ImageDataset):
        raise GhnlibError(
            f'split_dataset: dataset must be an ImageDataset, got '
            f'{type(dataset).__name__}; wrap tensors with ImageDataset(...)')
    try:
        fractions = [float(f) for f in fractions]
    except (TypeError, ValueError) as error:
        raise GhnlibError(f'split_dataset: fractions must be a sequence of '
                          f'numbers, got {fractions!r}') from error
    if not fractions or any(not (f > 0) for f in fractions):
        raise GhnlibError(f'split_dataset: fractions must be positive, got '
                          f'{fractions}; drop parts you do not need')
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise GhnlibError(
            f'split_dataset: fractions must sum to 1, got {fractions} '
            f'(sum {sum(fractions):.6g}); e.g. use (0.6, 0.2, 0.2)')
    sizes = apportion(len(dataset), fractions)
    if 0 in sizes:
        raise GhnlibError(
            f'split_dataset: fractions {fractions} leave part '
            f'{sizes.index(0)} empty for {len(dataset)} images; use larger '
            'fractions or more images')
    parts = split_indices(dataset.labels, sizes, seed=seed,
                          stratify=stratify)
    return tuple(dataset.subset(part) for part in parts)
