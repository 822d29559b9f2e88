r"""CIFAR-10 from its python pickle batches, as an :class:`ImageDataset`."""
import numbers
import os
import pickle
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

from ghnlib.data.image_dataset import ImageDataset
from ghnlib.data.splits import split_indices
from ghnlib.data.registry import register_dataset
from ghnlib.errors import GhnlibError

__all__ = ['load_cifar10']

PathLike = Union[str, os.PathLike]

SPLITS = ('train', 'val', 'test', 'train+val')
BATCHES_FOLDER = 'cifar-10-batches-py'
TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
TEST_BATCH = 'test_batch'
META_FILE = 'batches.meta'
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)

FOLDER_LAYOUT = (f"a '{BATCHES_FOLDER}' folder (or its parent) holding the "
                 f"python pickle batches {', '.join(TRAIN_BATCHES)}, "
                 f"{TEST_BATCH} and {META_FILE}, as extracted from "
                 "cifar-10-python.tar.gz")
BATCH_LAYOUT = ("a pickled dict with b'data', a uint8 array [N, 3072] (per "
                'image 1024 red, 1024 green, then 1024 blue values of the '
                "32x32 image, row-major), and b'labels', N ints in 0..9")

# Everything the real batches (pickled by Python 2 with numpy arrays) and
# re-pickled copies need; anything else could run code while loading.
SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
    ('_codecs', 'encode'),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f'refusing to load {module}.{name}: a CIFAR-10 batch holds '
                'only numpy arrays, lists, ints and bytes')
        return super().find_class(module, name)


def _read_pickle(path: str, layout: str) -> object:
    if not os.path.isfile(path):
        raise GhnlibError(f"CIFAR-10: no file '{path}'; expected "
                          f'{FOLDER_LAYOUT}')
    try:
        with open(path, 'rb') as handle:
            return _ArrayUnpickler(handle, encoding='bytes').load()
    except Exception as error:
        raise GhnlibError(
            f"CIFAR-10: '{path}' is not a readable pickle batch "
            f'({type(error).__name__}: {error}); expected {layout}. '
            'Extract cifar-10-python.tar.gz again') from error


def _entry(batch: dict, key: str):
    # Real batches have bytes keys; re-pickled Python 3 copies may not.
    if key.encode() in batch:
        return batch[key.encode()]
    return batch.get(key)


def _read_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    batch = _read_pickle(path, BATCH_LAYOUT)

    def malformed(what: str) -> GhnlibError:
        return GhnlibError(f"CIFAR-10: '{path}' is malformed: {what}; "
                           f'expected {BATCH_LAYOUT}')

    if not isinstance(batch, dict):
        raise malformed(f'it holds a {type(batch).__name__}, not a dict')
    data, labels = _entry(batch, 'data'), _entry(batch, 'labels')
    if data is None or labels is None:
        raise malformed(f'keys {sorted(batch, key=repr)} lack '
                        "b'data' or b'labels'")
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
            or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE))):
        found = (f'{data.dtype} array {list(data.shape)}'
                 if isinstance(data, np.ndarray) else type(data).__name__)
        raise malformed(f"b'data' is a {found}")
    try:
        labels = np.asarray(labels)
    except Exception as error:
        raise malformed(f"b'labels' is not a list of ints ({error})")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise malformed(f"b'labels' is a {labels.dtype} array "
                        f'{list(labels.shape)}, not a list of ints')
    if len(labels) != len(data):
        raise malformed(f"{len(data)} images in b'data' but {len(labels)} "
                        "b'labels'")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise malformed(f'labels range over [{labels.min()}, '
                        f'{labels.max()}]')
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def _read_class_names(folder: str) -> Optional[List[str]]:
    path = os.path.join(folder, META_FILE)
    if not os.path.isfile(path):
        return None
    meta_layout = (f"a pickled dict with b'label_names', {NUM_CLASSES} class "
                   'names')
    meta = _read_pickle(path, meta_layout)
    names = _entry(meta, 'label_names') if isinstance(meta, dict) else None
    if (not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES
            or not all(isinstance(n, (bytes, str)) for n in names)):
        raise GhnlibError(f"CIFAR-10: '{path}' is malformed; expected "
                          f'{meta_layout}')
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def _find_folder(root: PathLike) -> str:
    root = os.fspath(root)
    nested = os.path.join(root, BATCHES_FOLDER)
    if os.path.isdir(nested):
        return nested
    if os.path.isdir(root) and any(
            os.path.isfile(os.path.join(root, name))
            for name in TRAIN_BATCHES + (TEST_BATCH, )):
        return root
    raise GhnlibError(f"CIFAR-10: no batches in '{root}' nor in '{nested}'; "
                      f'expected {FOLDER_LAYOUT}. ghnlib does not download '
                      'datasets; fetch it from '
                      'https://www.cs.toronto.edu/~kriz/cifar.html')


def _channel_stats(images: np.ndarray) -> Tuple[List[float], List[float]]:
    """Exact per-channel mean and population std (in :math:`[0, 1]` units)
    of uint8 :math:`[N, C, H, W]` images, from value histograms so that no
    float copy of the images is made."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    pixels = torch.from_numpy(images)
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(pixels[:, channel].reshape(-1),
                                minlength=256).double()
        mean = float(counts @ values / counts.sum())
        variance = float(counts @ (values - mean)**2 / counts.sum())
        means.append(mean)
        stds.append(variance**0.5)
    return means, stds


@register_dataset('cifar10', folder_layout=FOLDER_LAYOUT, splits=SPLITS)
def load_cifar10(root: PathLike, *, split: str = 'train',
                 val_fraction: float = 1 / 12, seed: int = 0) -> ImageDataset:
    r"""CIFAR-10 (`Krizhevsky, 2009 <https://www.cs.toronto.edu/~kriz/
    learning-features-2009-TR.pdf>`_) read from the python pickle batches,
    normalised by the per-channel mean/std of the 50,000 training images.

    Train and val split the five training batches at random, stratified by
    class, val holding :obj:`val_fraction` of all 60,000 images (the default
    1/12 gives 45,000 / 5,000 / 10,000, i.e. 75% / 8.3% / 16.7% for
    train / val / test); test is :obj:`test_batch`. Unpickling admits only
    numpy arrays, lists, numbers and bytes, so a tampered file cannot run
    code.

    Args:
        root (str or os.PathLike): The :obj:`cifar-10-batches-py` folder or
            its parent.
        split (str, optional): :obj:`'train'`, :obj:`'val'`, :obj:`'test'`
            or :obj:`'train+val'`. (default: :obj:`'train'`)
        val_fraction (float, optional): Share of all images (train batches
            plus test batch) held out of the training batches for
            validation. (default: :obj:`1/12`)
        seed (int, optional): Seed of the train/val split.
            (default: :obj:`0`)
    """
    if split not in SPLITS:
        raise GhnlibError(f'load_cifar10: split must be one of {SPLITS}, got '
                          f'{split!r}')
    if (not isinstance(val_fraction, numbers.Real)
            or not 0 < val_fraction < 1):
        raise GhnlibError(f'load_cifar10: val_fraction must lie in (0, 1), '
                          f'got {val_fraction!r}; the default 1/12 holds out '
                          '5,000 images')
    folder = _find_folder(root)
    train_batches = [_read_batch(os.path.join(folder, name))
                     for name in TRAIN_BATCHES]
    test_images, test_labels = _read_batch(os.path.join(folder, TEST_BATCH))
    class_names = _read_class_names(folder)
    train_images = np.concatenate([images for images, _ in train_batches])
    train_labels = np.concatenate([labels for _, labels in train_batches])
    del train_batches  # the unpickled copies would double peak memory
    mean, std = _channel_stats(train_images)

    num_val = round(val_fraction * (len(train_images) + len(test_images)))
    if not 1 <= num_val < len(train_images):
        raise GhnlibError(
            f'load_cifar10: val_fraction={val_fraction} holds out {num_val} '
            f'of {len(train_images)} training images; choose a fraction that '
            'leaves both train and val non-empty')

    if split == 'test':
        # The unpickled buffer may be read-only, which torch cannot share.
        images, labels = test_images.copy(), test_labels
    else:
        images, labels = train_images, train_labels
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    if split in ('train', 'val'):
        train_part, val_part = split_indices(
            labels, [len(labels) - num_val, num_val], seed=seed)
        part = train_part if split == 'train' else val_part
        images, labels = images[part], labels[part]
    return ImageDataset(images, labels, num_classes=NUM_CLASSES, mean=mean,
                        std=std, name=f'cifar10/{split}',
                        class_names=class_names)
