r"""PatchCamelyon (PCam) read lazily from its HDF5 files."""
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ghnlib.data.image_dataset import channel_stats, to_unit_float
from ghnlib.data.registry import register_dataset
from ghnlib.errors import GhnlibError

__all__ = ['PCamDataset', 'load_pcam']

PathLike = Union[str, os.PathLike]

SPLIT_FILES = {'train': 'train', 'val': 'valid', 'test': 'test'}
FILE_NAME = 'camelyonpatch_level_2_split_{split}_{part}.h5'
FOLDER_LAYOUT = (
    'a folder with camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5 '
    "(gunzipped), each x file holding dataset 'x', uint8 [N, 96, 96, 3], "
    "and each y file dataset 'y', uint8 [N, 1, 1, 1] with labels 0 or 1")


def _import_h5py():
    try:
        import h5py
    except ImportError as error:
        raise GhnlibError('PCam is stored as HDF5, which needs h5py; '
                          'pip install h5py (or pip install ghnlib[pcam])'
                          ) from error
    return h5py


def _open_h5(h5py, path: str):
    if not os.path.isfile(path):
        raise GhnlibError(f"PCam: no file '{path}'; expected {FOLDER_LAYOUT}")
    try:
        return h5py.File(path, 'r')
    except OSError as error:
        raise GhnlibError(f"PCam: '{path}' is not a readable HDF5 file "
                          f'({error}); expected {FOLDER_LAYOUT}') from error


def _h5_dataset(handle, key: str, path: str):
    entry = handle.get(key)
    if entry is None or not hasattr(entry, 'shape'):
        raise GhnlibError(f"PCam: '{path}' has no dataset '{key}' (found "
                          f'{sorted(handle.keys())}); expected '
                          f'{FOLDER_LAYOUT}')
    return entry


class PCamDataset(Dataset):
    r"""PatchCamelyon (`Veeling et al., 2018
    <https://arxiv.org/abs/1806.03962>`_) histopathology patches, labelled
    1 where the centre shows metastatic tissue, read from HDF5 on demand.

    The labels are read up front (one byte per image); the images stay on
    disk. The image file is opened on first access in each process, so the
    dataset can be sent to :class:`~torch.utils.data.DataLoader` workers,
    and :meth:`__getitems__` reads a whole batch in one HDF5 call.

    Args:
        images_path (str or os.PathLike): HDF5 file with dataset :obj:`'x'`,
            uint8 :math:`[N, H, W, 3]`.
        labels_path (str or os.PathLike): HDF5 file with dataset :obj:`'y'`,
            :math:`[N, 1, 1, 1]` labels 0 or 1.
        mean (Sequence[float], optional): Per-channel mean in :math:`[0, 1]`
            units. (default: :obj:`None`)
        std (Sequence[float], optional): Per-channel standard deviation in
            :math:`[0, 1]` units. (default: :obj:`None`)
        max_items (int, optional): Keep only the first :obj:`max_items`
            patches. (default: :obj:`None`)
        name (str, optional): A name for logs and reprs.
            (default: :obj:`'pcam'`)

    Shapes:
        - **item:** image :math:`[3, H, W]` (:obj:`float32`), label
          :obj:`int`
    """
    num_classes = 2
    class_names = ('normal', 'metastatic')

    def __init__(self, images_path: PathLike, labels_path: PathLike, *,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 max_items: Optional[int] = None, name: str = 'pcam'):
        h5py = _import_h5py()
        if max_items is not None and (isinstance(max_items, bool)
                                      or not isinstance(max_items, int)
                                      or max_items < 1):
            raise GhnlibError(f'PCam: max_items must be None or a positive '
                              f'int, got {max_items!r}')
        self.images_path = os.fspath(images_path)
        self.labels_path = os.fspath(labels_path)
        self.name = name

        with _open_h5(h5py, self.images_path) as handle:
            images = _h5_dataset(handle, 'x', self.images_path)
            if (len(images.shape) != 4 or images.shape[-1] != 3
                    or images.dtype != np.uint8):
                raise GhnlibError(
                    f"PCam: dataset 'x' of '{self.images_path}' is a "
                    f'{images.dtype} array {list(images.shape)}; expected '
                    f'{FOLDER_LAYOUT}')
            num_images = images.shape[0]
            self.image_shape = (3, *images.shape[1:3])
        with _open_h5(h5py, self.labels_path) as handle:
            labels = _h5_dataset(handle, 'y', self.labels_path)
            if (len(labels.shape) < 1 or labels.shape[0] != num_images
                    or int(np.prod(labels.shape[1:])) != 1
                    or not np.issubdtype(labels.dtype, np.integer)):
                raise GhnlibError(
                    f"PCam: dataset 'y' of '{self.labels_path}' is a "
                    f'{labels.dtype} array {list(labels.shape)} for '
                    f'{num_images} images; expected {FOLDER_LAYOUT}')
            length = (num_images if max_items is None else
                      min(num_images, max_items))
            label_values = np.asarray(labels[:length]).reshape(-1)
        if length and (label_values.min() < 0
                       or label_values.max() >= self.num_classes):
            raise GhnlibError(
                f"PCam: '{self.labels_path}' has labels in "
                f'[{label_values.min()}, {label_values.max()}]; expected 0 '
                'or 1')
        self.labels = torch.from_numpy(label_values.astype(np.int64))
        self.mean, self.std = channel_stats(mean, std, 3, f"PCam '{name}'")
        if self.mean is None:
            self._mean = self._std = None
        else:
            self._mean = torch.tensor(self.mean).view(-1, 1, 1)
            self._std = torch.tensor(self.std).view(-1, 1, 1)
        self._handle = self._images = self._owner_pid = None

    def _image_store(self):
        # HDF5 handles must not cross a fork, so each process opens its own.
        if self._owner_pid != os.getpid():
            self._handle = _open_h5(_import_h5py(), self.images_path)
            self._images = self._handle['x']
            self._owner_pid = os.getpid()
        return self._images

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_handle'] = state['_images'] = state['_owner_pid'] = None
        return state

    def __len__(self) -> int:
        return self.labels.numel()

    def _position(self, index: int) -> int:
        position = int(index)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f'index {index} is out of range for PCam '
                             f"'{self.name}' with {len(self)} patches")
        return position

    def _prepare(self, pixels: np.ndarray) -> Tensor:
        images = torch.from_numpy(pixels).movedim(-1, -3).contiguous()
        images = to_unit_float(images, copy=False)
        if self._mean is not None:
            images.sub_(self._mean).div_(self._std)
        return images

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        position = self._position(index)
        pixels = self._image_store()[position]
        return self._prepare(pixels), int(self.labels[position])

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Tensor,
                                                                 int]]:
        positions = np.array([self._position(i) for i in indices],
                             dtype=np.int64)
        if positions.size == 0:
            return []
        # HDF5 point selections need strictly increasing indices.
        unique, order = np.unique(positions, return_inverse=True)
        store = self._image_store()
        if unique[-1] - unique[0] + 1 == unique.size:
            # A contiguous run (sequential sampling) reads as one hyperslab,
            # far faster than a point selection.
            pixels = store[int(unique[0]):int(unique[-1]) + 1]
        else:
            pixels = store[unique]
        images = self._prepare(pixels[order.reshape(-1)])
        labels = self.labels[torch.from_numpy(positions)].tolist()
        return list(zip(images.unbind(0), labels))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.name}, {len(self)}, '
                f'image_shape={self.image_shape})')


@register_dataset('pcam', folder_layout=FOLDER_LAYOUT, splits=tuple(SPLIT_FILES))
def load_pcam(root: PathLike, *, split: str = 'train',
              max_items: Optional[int] = None,
              mean: Optional[Sequence[float]] = None,
              std: Optional[Sequence[float]] = None) -> PCamDataset:
    r"""One split of PatchCamelyon as a lazily read :class:`PCamDataset`
    (262,144 / 32,768 / 32,768 :math:`96 \times 96` patches for train /
    val / test).

    Args:
        root (str or os.PathLike): The folder with the gunzipped
            ``camelyonpatch_level_2_split_*_{x,y}.h5`` files.
        split (str, optional): :obj:`'train'`, :obj:`'val'` (the ``valid``
            files) or :obj:`'test'`. (default: :obj:`'train'`)
        max_items (int, optional): Keep only the first :obj:`max_items`
            patches, for small runs. (default: :obj:`None`)
        mean (Sequence[float], optional): Per-channel mean in :math:`[0, 1]`
            units. (default: :obj:`None`)
        std (Sequence[float], optional): Per-channel standard deviation in
            :math:`[0, 1]` units. (default: :obj:`None`)
    """
    if split not in SPLIT_FILES:
        raise GhnlibError(f'load_pcam: split must be one of '
                          f'{tuple(SPLIT_FILES)}, got {split!r}')
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise GhnlibError(f"PCam: '{root}' is not a folder; expected "
                          f'{FOLDER_LAYOUT}')
    file_split = SPLIT_FILES[split]
    return PCamDataset(
        os.path.join(root, FILE_NAME.format(split=file_split, part='x')),
        os.path.join(root, FILE_NAME.format(split=file_split, part='y')),
        mean=mean, std=std, max_items=max_items, name=f'pcam/{split}')
