r"""CIFAR-10-C, CIFAR-10 test images under common corruptions, as an
:class:`ImageDataset`."""
import os
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from ghnlib.data.image_dataset import ImageDataset
from ghnlib.data.registry import register_dataset
from ghnlib.errors import GhnlibError

__all__ = ['load_cifar10c', 'list_cifar10c_corruptions']

PathLike = Union[str, os.PathLike]

NUM_SEVERITIES = 5
LABELS_FILE = 'labels.npy'
FOLDER_LAYOUT = (
    "a folder with one '<corruption>.npy' per corruption, a uint8 array "
    f'[{NUM_SEVERITIES} * n, H, W, 3] whose severity s fills rows '
    '(s - 1) * n to s * n ([50000, 32, 32, 3] for CIFAR-10-C), and '
    f"'{LABELS_FILE}', the {NUM_SEVERITIES} * n integer labels, as extracted "
    'from CIFAR-10-C.tar')


def _check_folder(root: PathLike) -> str:
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise GhnlibError(f"CIFAR-10-C: '{root}' is not a folder; expected "
                          f'{FOLDER_LAYOUT}')
    return root


def list_cifar10c_corruptions(root: PathLike) -> List[str]:
    """The corruption names (``.npy`` files other than :obj:`labels.npy`) in
    the CIFAR-10-C folder :obj:`root`, sorted.

    Args:
        root (str or os.PathLike): The CIFAR-10-C folder.
    """
    root = _check_folder(root)
    return sorted(name[:-len('.npy')] for name in os.listdir(root)
                  if name.endswith('.npy') and name != LABELS_FILE)


def _open_array(path: str) -> np.ndarray:
    try:
        # Memory-mapped: only the requested severity is read from disk.
        array = np.load(path, mmap_mode='r', allow_pickle=False)
    except Exception as error:
        raise GhnlibError(f"CIFAR-10-C: '{path}' is not a readable .npy "
                          f'array ({type(error).__name__}: {error}); expected '
                          f'{FOLDER_LAYOUT}') from error
    if not isinstance(array, np.ndarray):
        raise GhnlibError(f"CIFAR-10-C: '{path}' holds several arrays (an "
                          f'.npz archive), not one; expected {FOLDER_LAYOUT}')
    return array


# CIFAR-10-C corrupts only the test images; any other split would leak test
# data into training.
@register_dataset('cifar10c', folder_layout=FOLDER_LAYOUT, splits=('test', ))
def load_cifar10c(root: PathLike, corruption: str, severity: int, *,
                  num_classes: int = 10,
                  mean: Optional[Sequence[float]] = None,
                  std: Optional[Sequence[float]] = None) -> ImageDataset:
    r"""The CIFAR-10-C images (`Hendrycks and Dietterich, 2019
    <https://arxiv.org/abs/1903.12261>`_) of one :obj:`corruption` at one
    :obj:`severity`, read lazily from memory-mapped ``.npy`` files.

    Images are scaled to :math:`[0, 1]`; pass the CIFAR-10 training
    statistics as :obj:`mean`/:obj:`std` to normalise them as the model was
    trained.

    Args:
        root (str or os.PathLike): The folder holding ``<corruption>.npy``
            files and :obj:`labels.npy`.
        corruption (str): A corruption name, e.g. :obj:`'gaussian_noise'`
            (see :func:`list_cifar10c_corruptions`).
        severity (int): Corruption strength, 1 to 5.
        num_classes (int, optional): Number of classes. (default: :obj:`10`)
        mean (Sequence[float], optional): Per-channel mean in :math:`[0, 1]`
            units. (default: :obj:`None`)
        std (Sequence[float], optional): Per-channel standard deviation in
            :math:`[0, 1]` units. (default: :obj:`None`)
    """
    root = _check_folder(root)
    if (not isinstance(corruption, str) or corruption in ('', '.', '..')
            or os.path.basename(corruption) != corruption
            or corruption == LABELS_FILE[:-len('.npy')]):
        raise GhnlibError(f'load_cifar10c: corruption must be the name of a '
                          f"'<corruption>.npy' file in '{root}', got "
                          f'{corruption!r}; available: '
                          f'{list_cifar10c_corruptions(root)}')
    if (isinstance(severity, bool) or not isinstance(severity, int)
            or not 1 <= severity <= NUM_SEVERITIES):
        raise GhnlibError(f'load_cifar10c: severity must be an int from 1 to '
                          f'{NUM_SEVERITIES}, got {severity!r}')

    if (isinstance(num_classes, bool) or not isinstance(num_classes, int)
            or num_classes < 1):
        raise GhnlibError(f'load_cifar10c: num_classes must be a positive '
                          f'int, got {num_classes!r}')

    images_path = os.path.join(root, f'{corruption}.npy')
    labels_path = os.path.join(root, LABELS_FILE)
    if not os.path.isfile(images_path):
        raise GhnlibError(
            f"CIFAR-10-C: no file '{images_path}' for corruption "
            f'{corruption!r}; available: {list_cifar10c_corruptions(root)}. '
            f'Expected {FOLDER_LAYOUT}')
    if not os.path.isfile(labels_path):
        raise GhnlibError(f"CIFAR-10-C: no file '{labels_path}'; expected "
                          f'{FOLDER_LAYOUT}')
    images = _open_array(images_path)
    labels = _open_array(labels_path)
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3
            or images.shape[0] == 0 or images.shape[0] % NUM_SEVERITIES):
        raise GhnlibError(
            f"CIFAR-10-C: '{images_path}' is a {images.dtype} array "
            f'{list(images.shape)}; expected {FOLDER_LAYOUT}')
    if (not np.issubdtype(labels.dtype, np.integer)
            or labels.shape != images.shape[:1]):
        raise GhnlibError(
            f"CIFAR-10-C: '{labels_path}' is a {labels.dtype} array "
            f"{list(labels.shape)} but '{images_path}' has "
            f'{images.shape[0]} images; expected {FOLDER_LAYOUT}')

    per_severity = images.shape[0] // NUM_SEVERITIES
    rows = slice((severity - 1) * per_severity, severity * per_severity)
    severity_labels = np.array(labels[rows], dtype=np.int64)
    if severity_labels.min() < 0 or severity_labels.max() >= num_classes:
        raise GhnlibError(
            f"CIFAR-10-C: '{labels_path}' has labels in "
            f'[{severity_labels.min()}, {severity_labels.max()}] at severity '
            f'{severity}, outside [0, {num_classes}) for '
            f'num_classes={num_classes}')
    severity_images = torch.from_numpy(np.array(images[rows]))
    return ImageDataset(severity_images.permute(0, 3, 1, 2).contiguous(),
                        torch.from_numpy(severity_labels),
                        num_classes=num_classes, mean=mean, std=std,
                        name=f'cifar10c/{corruption}/{severity}')
