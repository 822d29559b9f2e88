r"""The input transform of a data recipe: resize, channel count and
normalisation, as torchvision weights' :obj:`transforms()`."""
from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ghnlib.errors import GhnlibError

__all__ = ['ImageTransform']


class ImageTransform:
    r"""Maps images with values in :math:`[0, 1]` to what a network trained
    on a recipe expects:

    .. math::
        \mathbf{x}' = \frac{\mathrm{resize}(\mathbf{x}) - \mu}{\sigma}

    per channel, after bilinear resizing to :obj:`image_size` (antialiased
    when shrinking) and repeating a single grey channel to :obj:`channels`.

    Args:
        image_size (int): Side of the square output images.
        channels (int): Output channels.
        mean (Sequence[float]): Per-channel mean :math:`\mu`.
        std (Sequence[float]): Per-channel standard deviation
            :math:`\sigma`.

    Shapes:
        - **input:** :math:`(C, H, W)` or :math:`(N, C, H, W)`, with
          :math:`C` = :obj:`channels` or 1
        - **output:** :math:`(C', S, S)` or :math:`(N, C', S, S)`
    """
    def __init__(self, image_size: int, channels: int, mean: Sequence[float],
                 std: Sequence[float]):
        if not isinstance(image_size, int) or image_size < 1:
            raise GhnlibError(f'ImageTransform: image_size must be a positive '
                              f'integer, got {image_size!r}')
        if len(mean) != channels or len(std) != channels:
            raise GhnlibError(f'ImageTransform: mean and std need one value '
                              f'per channel ({channels}), got {list(mean)} '
                              f'and {list(std)}')
        if any(not s > 0 for s in std):
            raise GhnlibError(f'ImageTransform: std must be positive, got '
                              f'{list(std)}')
        self.image_size, self.channels = int(image_size), int(channels)
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]

    @classmethod
    def from_dict(cls, recipe: Dict[str, Any]) -> 'ImageTransform':
        """From a data recipe with :obj:`image_size`, :obj:`channels`,
        :obj:`mean` and :obj:`std`."""
        try:
            return cls(recipe['image_size'], recipe['channels'],
                       recipe['mean'], recipe['std'])
        except KeyError as error:
            raise GhnlibError(f'the data recipe {recipe} has no {error}; it '
                              'needs image_size, channels, mean and std'
                              ) from None

    def to_dict(self) -> Dict[str, Any]:
        return {'image_size': self.image_size, 'channels': self.channels,
                'mean': self.mean, 'std': self.std}

    def __call__(self, images: Tensor) -> Tensor:
        if images.dim() not in (3, 4):
            raise GhnlibError(f'ImageTransform expects (C, H, W) or '
                              f'(N, C, H, W) images, got shape '
                              f'{tuple(images.shape)}')
        single = images.dim() == 3
        batch = images.unsqueeze(0) if single else images
        if batch.size(1) not in (1, self.channels):
            raise GhnlibError(f'ImageTransform: images have {batch.size(1)} '
                              f'channels; expected {self.channels} or 1')
        batch = batch.float()
        if batch.shape[-2:] != (self.image_size, self.image_size):
            batch = F.interpolate(
                batch, size=(self.image_size, self.image_size),
                mode='bilinear', align_corners=False,
                antialias=min(batch.shape[-2:]) > self.image_size)
        batch = batch.expand(-1, self.channels, -1, -1)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        batch = (batch - mean) / std
        return batch[0] if single else batch

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(image_size={self.image_size}, '
                f'channels={self.channels})')
