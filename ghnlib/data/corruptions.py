r"""Common image corruptions at five severities, after CIFAR-10-C
(`"Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations" <https://arxiv.org/abs/1903.12261>`_), for out-of-distribution
evaluation where the CIFAR-10-C files are not at hand."""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ghnlib.data.image_dataset import ImageDataset, to_unit_float
from ghnlib.errors import GhnlibError

__all__ = ['CORRUPTIONS', 'CORRUPTION_PARAMETERS', 'corrupt',
           'CorruptedDataset']

SEVERITIES = (1, 2, 3, 4, 5)

#: The CIFAR-10-C constant :math:`c` of each corruption at severities 1 to 5.
CORRUPTION_PARAMETERS: Dict[str, Tuple] = {
    # Standard deviation of additive noise.
    'gaussian_noise': (0.04, 0.06, 0.08, 0.09, 0.10),
    # Photon count of a white pixel; fewer photons, more noise.
    'shot_noise': (500, 250, 100, 75, 50),
    # Fraction of values replaced by 0 or 1.
    'impulse_noise': (0.01, 0.02, 0.03, 0.05, 0.07),
    # Standard deviation of multiplicative noise.
    'speckle_noise': (0.06, 0.10, 0.12, 0.16, 0.20),
    # Standard deviation of the blur in pixels.
    'gaussian_blur': (0.4, 0.6, 0.7, 0.8, 1.0),
    # (Disk radius, standard deviation of its anti-aliasing blur) in pixels.
    'defocus_blur': ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2),
                     (1.5, 0.1)),
    # Side of the coarse grid relative to the image side.
    'pixelate': (0.95, 0.90, 0.85, 0.75, 0.65),
    # Factor left of each pixel's distance to the channel mean.
    'contrast': (0.75, 0.5, 0.4, 0.3, 0.15),
    # Increase of the HSV value.
    'brightness': (0.05, 0.1, 0.15, 0.2, 0.3),
}

CORRUPTIONS = tuple(CORRUPTION_PARAMETERS)

# skimage.filters.gaussian (used for CIFAR-10-C) cuts its kernel at 4 sigma.
GAUSSIAN_TRUNCATE = 4.0


def _depthwise(images: Tensor, kernel: Tensor) -> Tensor:
    """Correlates every channel of :obj:`images` with the odd-sized 2-D
    :obj:`kernel`, repeating edge pixels beyond the border."""
    num_images, channels, height, width = images.shape
    pad_y, pad_x = kernel.size(0) // 2, kernel.size(1) // 2
    planes = images.reshape(num_images * channels, 1, height, width)
    planes = F.pad(planes, (pad_x, pad_x, pad_y, pad_y), mode='replicate')
    planes = F.conv2d(planes, kernel[None, None].to(images.dtype))
    return planes.view(num_images, channels, height, width)


def gaussian_kernel_1d(sigma: float, radius: int) -> Tensor:
    """Normalised samples of a centred Gaussian at :math:`-r, \\ldots, r`."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma)**2)
    return weights / weights.sum()


def _gaussian_noise(images: Tensor, std: float,
                    generator: Optional[torch.Generator]) -> Tensor:
    noise = torch.randn(images.shape, generator=generator,
                        dtype=images.dtype, device=images.device)
    return images + std * noise


def _shot_noise(images: Tensor, photons: float,
                generator: Optional[torch.Generator]) -> Tensor:
    return torch.poisson(images * photons, generator=generator) / photons


def _impulse_noise(images: Tensor, amount: float,
                   generator: Optional[torch.Generator]) -> Tensor:
    replaced = torch.rand(images.shape, generator=generator,
                          device=images.device) < amount
    salt = torch.rand(images.shape, generator=generator,
                      device=images.device) < 0.5
    return torch.where(replaced, salt.to(images.dtype), images)


def _speckle_noise(images: Tensor, std: float,
                   generator: Optional[torch.Generator]) -> Tensor:
    noise = torch.randn(images.shape, generator=generator,
                        dtype=images.dtype, device=images.device)
    return images + images * std * noise


def _gaussian_blur(images: Tensor, sigma: float,
                   generator: Optional[torch.Generator]) -> Tensor:
    weights = gaussian_kernel_1d(sigma, int(GAUSSIAN_TRUNCATE * sigma + 0.5))
    images = _depthwise(images, weights.view(1, -1))
    return _depthwise(images, weights.view(-1, 1))


def defocus_kernel(radius: float, alias_sigma: float) -> Tensor:
    """A disk of :obj:`radius` pixels, normalised to sum 1 and softened by a
    :math:`3 \\times 3` Gaussian of standard deviation :obj:`alias_sigma`
    against aliasing, as CIFAR-10-C builds its defocus kernel."""
    # One extra ring of zeros makes room for the 3x3 softening.
    half = math.ceil(radius) + 1
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = (offsets.view(-1, 1)**2 + offsets.view(1, -1)**2 <= radius**2)
    disk = disk.double() / disk.sum()
    soften = gaussian_kernel_1d(alias_sigma, 1)
    soften = soften.view(-1, 1) * soften.view(1, -1)
    return F.conv2d(disk[None, None], soften[None, None], padding=1)[0, 0]


def _defocus_blur(images: Tensor, parameters: Tuple[float, float],
                  generator: Optional[torch.Generator]) -> Tensor:
    return _depthwise(images, defocus_kernel(*parameters))


def box_average_matrix(size: int, coarse_size: int) -> Tensor:
    """Rows averaging the pixels whose centres fall in each of
    :obj:`coarse_size` equal cells covering :obj:`size` pixels (PIL's box
    resampling)."""
    cell = size / coarse_size
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    owner = (centres / cell).floor().clamp_max(coarse_size - 1).long()
    matrix = F.one_hot(owner, coarse_size).T.double()
    return matrix / matrix.sum(dim=1, keepdim=True)


def _pixelate(images: Tensor, scale: float,
              generator: Optional[torch.Generator]) -> Tensor:
    height, width = images.shape[-2:]
    coarse_height = max(int(height * scale), 1)
    coarse_width = max(int(width * scale), 1)
    rows = box_average_matrix(height, coarse_height).to(images.dtype)
    cols = box_average_matrix(width, coarse_width).to(images.dtype)
    coarse = rows @ images @ cols.T
    return F.interpolate(coarse, size=(height, width), mode='nearest-exact')


def _contrast(images: Tensor, factor: float,
              generator: Optional[torch.Generator]) -> Tensor:
    means = images.mean(dim=(-2, -1), keepdim=True)
    return (images - means) * factor + means


def _brightness(images: Tensor, increase: float,
                generator: Optional[torch.Generator]) -> Tensor:
    # With hue and saturation fixed, HSV -> RGB is linear in the value V =
    # max over channels, so raising V scales every channel by V' / V; black
    # pixels (V = 0, no hue) become grey. For one channel, V is the pixel.
    value = images.amax(dim=1, keepdim=True)
    new_value = (value + increase).clamp_max(1.0)
    scale = new_value / value.clamp_min(torch.finfo(images.dtype).tiny)
    return torch.where(value > 0, images * scale, new_value)


CorruptionFn = Callable[[Tensor, object, Optional[torch.Generator]], Tensor]

_CORRUPTION_FNS: Dict[str, CorruptionFn] = {
    'gaussian_noise': _gaussian_noise,
    'shot_noise': _shot_noise,
    'impulse_noise': _impulse_noise,
    'speckle_noise': _speckle_noise,
    'gaussian_blur': _gaussian_blur,
    'defocus_blur': _defocus_blur,
    'pixelate': _pixelate,
    'contrast': _contrast,
    'brightness': _brightness,
}


def _check_choice(name: str, severity: int, owner: str) -> None:
    if not isinstance(name, str) or name not in CORRUPTION_PARAMETERS:
        raise GhnlibError(f'{owner}: unknown corruption {name!r}; choose one '
                          f'of {CORRUPTIONS}')
    if (isinstance(severity, bool) or not isinstance(severity, int)
            or severity not in SEVERITIES):
        raise GhnlibError(f'{owner}: severity must be an int in '
                          f'{SEVERITIES}, got {severity!r}')


def _check_images(images: Tensor, owner: str) -> None:
    if not isinstance(images, Tensor):
        raise GhnlibError(f'{owner}: images must be a torch tensor, got '
                          f'{type(images).__name__}; convert with '
                          'torch.as_tensor')
    if images.dim() != 4:
        raise GhnlibError(f'{owner}: images must have shape [N, C, H, W], '
                          f'got {list(images.shape)}; add the missing axes, '
                          'e.g. images.unsqueeze(0) for a single image')
    if not images.is_floating_point():
        raise GhnlibError(f'{owner}: images must be floating point in [0, '
                          f'1], got {images.dtype}; for uint8 images use '
                          'images.float() / 255')
    if images.numel() > 0:
        low, high = float(images.min()), float(images.max())
        if not (0.0 <= low and high <= 1.0):
            raise GhnlibError(
                f'{owner}: images must lie in [0, 1] (raw, not normalised), '
                f'found values in [{low:.4g}, {high:.4g}]; pass the images '
                'before mean/std normalisation')


def corrupt(images: Tensor, name: str, severity: int, *,
            generator: Optional[torch.Generator] = None) -> Tensor:
    r"""Applies the CIFAR-10-C corruption :obj:`name` at :obj:`severity` to
    raw images, as in `"Benchmarking Neural Network Robustness to Common
    Corruptions and Perturbations" <https://arxiv.org/abs/1903.12261>`_,
    with its CIFAR constants :math:`c` (:obj:`CORRUPTION_PARAMETERS`).

    .. math::
        \mathbf{x}' = \mathrm{clip}_{[0, 1]}\left(
        \mathrm{corruption}_c(\mathbf{x}) \right)

    where, per pixel value :math:`x`, with noise
    :math:`\epsilon \sim \mathcal{N}(0, 1)` drawn independently per value:

    - :obj:`'gaussian_noise'`: :math:`x + c\,\epsilon`
    - :obj:`'shot_noise'`: :math:`\mathrm{Poisson}(c\,x) / c`
    - :obj:`'impulse_noise'`: a fraction :math:`c` of values set to 0 or 1
      with equal odds (salt and pepper, per channel)
    - :obj:`'speckle_noise'`: :math:`x + x\,c\,\epsilon`
    - :obj:`'gaussian_blur'`: separable Gaussian of standard deviation
      :math:`c` pixels, cut at :math:`4c`, edge pixels repeated
    - :obj:`'defocus_blur'`: a disk of radius :math:`c_0` softened by a
      :math:`3 \times 3` Gaussian of standard deviation :math:`c_1`, edge
      pixels repeated
    - :obj:`'pixelate'`: box-average to a grid of
      :math:`\lfloor c H \rfloor \times \lfloor c W \rfloor` cells, then
      nearest-neighbour back to :math:`H \times W`
    - :obj:`'contrast'`: :math:`(x - \mu) c + \mu` with :math:`\mu` the
      mean of the image's channel
    - :obj:`'brightness'`: HSV value :math:`V \to \min(V + c, 1)` with hue
      and saturation kept (for one channel: :math:`\min(x + c, 1)`)

    Args:
        images (torch.Tensor): Raw float images in :math:`[0, 1]`, before
            any mean/std normalisation; any number of channels.
        name (str): One of :obj:`CORRUPTIONS`.
        severity (int): 1 (mildest) to 5.
        generator (torch.Generator, optional): The source of all randomness
            (noise corruptions); the same seed gives the same output.
            (default: :obj:`None`, the global generator)

    Shapes:
        - **input:** :math:`[N, C, H, W]`
        - **output:** :math:`[N, C, H, W]`, same dtype, in :math:`[0, 1]`
    """
    _check_choice(name, severity, 'corrupt')
    _check_images(images, 'corrupt')
    if generator is not None and not isinstance(generator, torch.Generator):
        raise GhnlibError(f'corrupt: generator must be a torch.Generator or '
                          f'None, got {type(generator).__name__}; use '
                          'torch.Generator().manual_seed(seed)')
    if images.numel() == 0:
        return images.clone()
    parameter = CORRUPTION_PARAMETERS[name][severity - 1]
    corrupted = _CORRUPTION_FNS[name](images.detach(), parameter, generator)
    return corrupted.clamp_(0.0, 1.0)


class CorruptedDataset(ImageDataset):
    r"""An :class:`ImageDataset` whose images carry a CIFAR-10-C corruption
    (`"Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations" <https://arxiv.org/abs/1903.12261>`_) of fixed
    :obj:`severity`, drawn once with :obj:`seed`, and normalised exactly like
    the wrapped clean dataset.

    .. math::
        \mathbf{x}'_c = \frac{\mathrm{corrupt}(\mathbf{x} / s)_c - \mu_c}
        {\sigma_c}

    with the scale :math:`s` and statistics :math:`\mu, \sigma` of the
    wrapped dataset, so a model trained on the clean set is evaluated on
    shifted inputs under the same normalisation. The stored :obj:`images`
    are :obj:`corrupt(images / s, name, severity,
    generator=torch.Generator().manual_seed(seed))` as :obj:`float32`.

    Args:
        dataset (ImageDataset): The clean images (uint8 or float in
            :math:`[0, 1]`), held in memory.
        name (str): One of :obj:`CORRUPTIONS`.
        severity (int): 1 (mildest) to 5.
        seed (int, optional): Seed of the corruption's randomness.
            (default: :obj:`0`)

    Shapes:
        - **item:** image :math:`[C, H, W]` (:obj:`float32`), label
          :obj:`int`, as for the wrapped dataset
    """
    def __init__(self, dataset: ImageDataset, name: str, severity: int, *,
                 seed: int = 0):
        if not isinstance(dataset, ImageDataset):
            raise GhnlibError(
                f'CorruptedDataset: dataset must be an in-memory '
                f'ghnlib.data.ImageDataset, got {type(dataset).__name__}; '
                'load the images into an ImageDataset first')
        _check_choice(name, severity, 'CorruptedDataset')
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise GhnlibError(f'CorruptedDataset: seed must be an int, got '
                              f'{seed!r}')
        clean = to_unit_float(dataset.images, copy=False)
        _check_images(clean, f"CorruptedDataset of '{dataset.name}'")
        generator = torch.Generator().manual_seed(seed)
        corrupted = corrupt(clean, name, severity, generator=generator)
        label = f'{dataset.name}/' if dataset.name else ''
        super().__init__(corrupted, dataset.labels,
                         num_classes=dataset.num_classes, mean=dataset.mean,
                         std=dataset.std,
                         name=f'{label}{name}-{severity}',
                         class_names=dataset.class_names)
        self.corruption = name
        self.severity = severity
        self.seed = seed
