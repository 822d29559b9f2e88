r"""The handwritten digits bundled with scikit-learn, as an
:class:`ImageDataset`."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ghnlib.data.image_dataset import ImageDataset
from ghnlib.data.splits import split_dataset
from ghnlib.data.registry import register_dataset
from ghnlib.errors import GhnlibError

__all__ = ['load_digits']

SPLITS = ('train', 'val', 'test')

# The bundled images hold ink counts 0..16.
MAX_INTENSITY = 16.0


def _read_digits() -> Tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as error:
        raise GhnlibError(
            'load_digits reads the digits bundled with scikit-learn, which is '
            'not installed; pip install scikit-learn') from error
    bunch = sklearn_load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    return images.unsqueeze(1) / MAX_INTENSITY, labels


@register_dataset('digits', folder_layout=None, splits=SPLITS + (None, ))
def load_digits(*, image_size: int = 8, channels: int = 1,
                split: Optional[str] = None,
                fractions: Sequence[float] = (0.6, 0.2, 0.2),
                seed: int = 0) -> ImageDataset:
    r"""The 1,797 real :math:`8 \times 8` handwritten digits (10 classes)
    bundled with scikit-learn, resized and normalised by their own
    per-channel mean and standard deviation over all 1,797 images.

    Images are stored as floats in :math:`[0, 1]`; the same mean/std is used
    whichever split is returned.

    Args:
        image_size (int, optional): Side of the returned images, resized with
            bilinear interpolation (e.g. :obj:`32` for CIFAR-shaped
            networks). (default: :obj:`8`)
        channels (int, optional): Number of channels; the grey channel is
            repeated. (default: :obj:`1`)
        split (str, optional): :obj:`None` for the whole set, or one of
            :obj:`'train'`, :obj:`'val'`, :obj:`'test'` for that part of
            :func:`~ghnlib.data.split_dataset`. (default: :obj:`None`)
        fractions (Sequence[float], optional): Train/val/test fractions.
            (default: :obj:`(0.6, 0.2, 0.2)`)
        seed (int, optional): Seed of the split. (default: :obj:`0`)
    """
    if (isinstance(image_size, bool) or not isinstance(image_size, int)
            or image_size < 1):
        raise GhnlibError(f'load_digits: image_size must be a positive int, '
                          f'got {image_size!r}')
    if isinstance(channels, bool) or not isinstance(channels, int) \
            or channels < 1:
        raise GhnlibError(f'load_digits: channels must be a positive int '
                          f'(1 for grey, 3 for RGB networks), got '
                          f'{channels!r}')
    if split is not None and split not in SPLITS:
        raise GhnlibError(f"load_digits: split must be None or one of "
                          f"{SPLITS}, got {split!r}")
    if split is not None and len(fractions) != len(SPLITS):
        raise GhnlibError(
            f'load_digits: fractions must give the train/val/test shares '
            f'(three numbers), got {tuple(fractions)}')

    images, labels = _read_digits()
    if image_size != images.size(-1):
        images = F.interpolate(images, size=(image_size, image_size),
                               mode='bilinear', align_corners=False,
                               antialias=image_size < images.size(-1))
    images = images.expand(-1, channels, -1, -1).contiguous()
    mean = images.mean(dim=(0, 2, 3)).tolist()
    std = images.std(dim=(0, 2, 3), unbiased=False).tolist()
    dataset = ImageDataset(images, labels, num_classes=10, mean=mean,
                           std=std, name='digits',
                           class_names=[str(d) for d in range(10)])
    if split is None:
        return dataset
    part = split_dataset(dataset, fractions, seed=seed)[SPLITS.index(split)]
    part.name = f'digits/{split}'
    return part
