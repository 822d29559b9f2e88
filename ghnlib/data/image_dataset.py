r"""A labelled image classification set held in memory."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ghnlib.errors import GhnlibError

__all__ = ['ImageDataset']

Indices = Union[Tensor, Sequence[int]]


def channel_stats(mean: Optional[Sequence[float]],
                  std: Optional[Sequence[float]], num_channels: int,
                  owner: str) -> Tuple[Optional[Tuple[float, ...]],
                                       Optional[Tuple[float, ...]]]:
    """Checks a per-channel :obj:`mean`/:obj:`std` pair and returns it as two
    tuples of floats (or two :obj:`None`)."""
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        raise GhnlibError(
            f'{owner}: mean and std must be given together (got '
            f'mean={mean}, std={std}); pass both, or neither to keep '
            'images in [0, 1]')
    try:
        mean = tuple(float(m) for m in mean)
        std = tuple(float(s) for s in std)
    except (TypeError, ValueError) as error:
        raise GhnlibError(f'{owner}: mean and std must be sequences of '
                          f'numbers, one per channel ({error})') from error
    for stat_name, values in (('mean', mean), ('std', std)):
        if len(values) != num_channels:
            raise GhnlibError(
                f'{owner}: {stat_name} has {len(values)} values but the '
                f'images have {num_channels} channels; give one per channel')
    if not all(s > 0 and s < float('inf') for s in std) or not all(
            abs(m) < float('inf') for m in mean):
        raise GhnlibError(f'{owner}: std must be positive and finite and '
                          f'mean finite, got mean={mean}, std={std}')
    return mean, std


def to_unit_float(images: Tensor, copy: bool) -> Tensor:
    """Images as :obj:`float32`, uint8 ones scaled from :math:`[0, 255]` to
    :math:`[0, 1]`; with :obj:`copy`, never a view of :obj:`images`."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images.to(torch.float32, copy=copy)


class ImageDataset(Dataset):
    r"""Images and their class labels in memory, returned as float tensors
    normalised per channel.

    .. math::
        \mathbf{x}'_c = \frac{\mathbf{x}_c / s - \mu_c}{\sigma_c}

    where :math:`s = 255` for :obj:`uint8` images and :math:`s = 1` for
    float ones; without :obj:`mean`/:obj:`std` the images are only scaled.

    :meth:`__getitems__` gathers a whole batch with one indexing operation,
    which :class:`torch.utils.data.DataLoader` uses instead of one
    :meth:`__getitem__` call per image.

    Args:
        images (torch.Tensor): :obj:`uint8` values in :math:`[0, 255]` or
            float values, shape :math:`[N, C, H, W]`.
        labels (torch.Tensor): Integer class of each image, shape :math:`[N]`.
        num_classes (int): Number of classes; labels lie in
            :math:`[0, \text{num\_classes})`.
        mean (Sequence[float], optional): Per-channel :math:`\mu_c`, in the
            scaled units. (default: :obj:`None`)
        std (Sequence[float], optional): Per-channel :math:`\sigma_c`, in the
            scaled units. (default: :obj:`None`)
        name (str, optional): A name for logs and reprs.
            (default: :obj:`''`)
        class_names (Sequence[str], optional): A name per class.
            (default: :obj:`None`)

    Shapes:
        - **item:** image :math:`[C, H, W]` (:obj:`float32`), label
          :obj:`int`
        - **batch** (default collate): :math:`[B, C, H, W]`
          (:obj:`float32`), :math:`[B]` (:obj:`int64`)
    """
    def __init__(self, images: Tensor, labels: Tensor, *, num_classes: int,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, name: str = '',
                 class_names: Optional[Sequence[str]] = None):
        owner = f"ImageDataset '{name}'" if name else 'ImageDataset'
        if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
            raise GhnlibError(
                f'{owner}: images and labels must be torch tensors, got '
                f'{type(images).__name__} and {type(labels).__name__}; '
                'convert arrays with torch.as_tensor')
        if images.dim() != 4:
            raise GhnlibError(
                f'{owner}: images must have shape [N, C, H, W], got '
                f'{list(images.shape)}; add the missing axes (e.g. '
                'images.unsqueeze(1) for one channel) or move channels '
                'first with images.permute(0, 3, 1, 2)')
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise GhnlibError(
                f'{owner}: images must be uint8 (0..255) or floating point, '
                f'got {images.dtype}; convert them with .to(torch.uint8) or '
                '.float()')
        if (labels.dim() != 1 or labels.dtype == torch.bool
                or labels.is_floating_point() or labels.is_complex()):
            raise GhnlibError(
                f'{owner}: labels must be a 1-D integer tensor, got dtype '
                f'{labels.dtype} and shape {list(labels.shape)}; use '
                'labels.long().view(-1)')
        if labels.numel() != images.size(0):
            raise GhnlibError(
                f'{owner}: {images.size(0)} images but {labels.numel()} '
                'labels; give exactly one label per image')
        if (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                or num_classes < 1):
            raise GhnlibError(f'{owner}: num_classes must be a positive int, '
                              f'got {num_classes!r}')
        if labels.numel() > 0:
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= num_classes:
                raise GhnlibError(
                    f'{owner}: labels must lie in [0, {num_classes}) for '
                    f'num_classes={num_classes}, found values in [{low}, '
                    f'{high}]; remap the labels or raise num_classes')
        if class_names is not None and len(class_names) != num_classes:
            raise GhnlibError(
                f'{owner}: {len(class_names)} class_names for '
                f'num_classes={num_classes}; give one name per class')
        self.mean, self.std = channel_stats(mean, std, images.size(1), owner)

        self.images = images
        self.labels = labels.long()
        self.num_classes = num_classes
        self.name = name
        self.class_names = (None if class_names is None else
                            [str(c) for c in class_names])
        if self.mean is None:
            self._mean = self._std = None
        else:
            self._mean = torch.tensor(self.mean).view(-1, 1, 1)
            self._std = torch.tensor(self.std).view(-1, 1, 1)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """:math:`(C, H, W)` of every image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.size(0)

    def _prepare(self, images: Tensor, copy: bool) -> Tensor:
        images = to_unit_float(images, copy=copy)
        if self._mean is not None:
            images.sub_(self._mean).div_(self._std)
        return images

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        # The stored row is a view; copy so callers cannot edit the dataset.
        return (self._prepare(self.images[index], copy=True),
                int(self.labels[index]))

    def __getitems__(self, indices: Indices) -> List[Tuple[Tensor, int]]:
        index = torch.as_tensor(indices, dtype=torch.long)
        # Advanced indexing already copies, so no second copy is needed.
        images = self._prepare(self.images[index], copy=False)
        return list(zip(images.unbind(0), self.labels[index].tolist()))

    def subset(self, indices: Indices) -> 'ImageDataset':
        r"""A new :class:`ImageDataset` over the rows :obj:`indices` (a
        sequence of ints, an integer tensor or a boolean mask), with the same
        normalisation, classes and name."""
        index = torch.as_tensor(indices)
        if index.dtype == torch.bool:
            if index.shape != (len(self), ):
                raise GhnlibError(
                    f'subset: a boolean mask must have shape [{len(self)}], '
                    f'got {list(index.shape)}')
            index = index.nonzero().view(-1)
        elif index.numel() == 0:
            index = index.long().view(-1)
        elif index.is_floating_point() or index.dim() != 1:
            raise GhnlibError(
                f'subset: indices must be a 1-D sequence of ints or a '
                f'boolean mask, got dtype {index.dtype} and shape '
                f'{list(index.shape)}')
        if index.numel() > 0 and (int(index.min()) < -len(self)
                                  or int(index.max()) >= len(self)):
            raise GhnlibError(
                f'subset: indices must lie in [-{len(self)}, {len(self)}) '
                f'for a dataset of {len(self)} images, got values in '
                f'[{int(index.min())}, {int(index.max())}]')
        index = index.long()
        return ImageDataset(self.images[index], self.labels[index],
                            num_classes=self.num_classes, mean=self.mean,
                            std=self.std, name=self.name,
                            class_names=self.class_names)

    def __repr__(self) -> str:
        name = f'{self.name}, ' if self.name else ''
        return (f'{self.__class__.__name__}({name}{len(self)}, '
                f'image_shape={self.image_shape}, '
                f'num_classes={self.num_classes})')
