r"""Datasets by name: :func:`list_datasets` and :func:`get_dataset`."""
import inspect
import os
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Union

from torch.utils.data import Dataset

from ghnlib.data import cifar10, cifar10c, pcam
from ghnlib.data.cifar10 import load_cifar10
from ghnlib.data.cifar10c import load_cifar10c
from ghnlib.data.digits import load_digits
from ghnlib.data.pcam import load_pcam
from ghnlib.errors import GhnlibError

__all__ = ['list_datasets', 'get_dataset', 'get_splits']


class _Entry(NamedTuple):
    loader: Callable[..., Dataset]
    folder_layout: Optional[str]  # None: bundled, no root needed
    splits: tuple


_DATASETS: Dict[str, _Entry] = {
    'cifar10': _Entry(load_cifar10, cifar10.FOLDER_LAYOUT, cifar10.SPLITS),
    # CIFAR-10-C corrupts only the test images; any other split would leak
    # test data into training.
    'cifar10c': _Entry(load_cifar10c, cifar10c.FOLDER_LAYOUT, ('test', )),
    'digits': _Entry(load_digits, None, ('train', 'val', 'test', None)),
    'pcam': _Entry(load_pcam, pcam.FOLDER_LAYOUT, tuple(pcam.SPLIT_FILES)),
}


def list_datasets() -> List[str]:
    """The names :func:`get_dataset` accepts, sorted."""
    return sorted(_DATASETS)


def get_dataset(name: str, split: Optional[str] = 'train', *,
                root: Union[str, os.PathLike, None] = None,
                **kwargs) -> Dataset:
    r"""Loads the :obj:`split` of the dataset called :obj:`name` with its
    loader (:func:`~ghnlib.data.load_cifar10`,
    :func:`~ghnlib.data.load_cifar10c`, :func:`~ghnlib.data.load_digits` or
    :func:`~ghnlib.data.load_pcam`).

    Args:
        name (str): One of :func:`list_datasets`.
        split (str, optional): The split; :obj:`'cifar10c'` has only
            :obj:`'test'`, :obj:`'digits'` also takes :obj:`None` (the whole
            set). (default: :obj:`'train'`)
        root (str or os.PathLike, optional): The dataset's folder; not used
            by :obj:`'digits'`, which is bundled with scikit-learn.
            (default: :obj:`None`)
        **kwargs (optional): Further options of the loader, e.g.
            :obj:`corruption` and :obj:`severity` for :obj:`'cifar10c'`.
    """
    entry = _DATASETS.get(name.lower() if isinstance(name, str) else name)
    if entry is None:
        raise GhnlibError(f'get_dataset: unknown dataset {name!r}; known '
                          f'datasets: {list_datasets()}')
    name = name.lower()
    if split not in entry.splits:
        raise GhnlibError(f'get_dataset: {name!r} has splits '
                          f'{entry.splits}, got split={split!r}')

    parameters = inspect.signature(entry.loader).parameters
    options = [p for p in parameters if p not in ('root', 'split')]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise GhnlibError(f'get_dataset: {name!r} does not take {unknown}; '
                          f'its options are {options}')
    missing = [p for p in options if p not in kwargs
               and parameters[p].default is inspect.Parameter.empty]
    if missing:
        raise GhnlibError(f'get_dataset: {name!r} needs {missing}, e.g. '
                          "get_dataset('cifar10c', 'test', root=..., "
                          "corruption='gaussian_noise', severity=3)")

    if entry.folder_layout is None:
        return entry.loader(split=split, **kwargs)
    if root is None:
        raise GhnlibError(f'get_dataset: {name!r} needs root=, the folder '
                          f'with {entry.folder_layout}')
    if name == 'cifar10c':
        return entry.loader(root, **kwargs)
    return entry.loader(root, split=split, **kwargs)


def get_splits(name: str, splits: Sequence[str] = ('train', 'val'), *,
               root: Union[str, os.PathLike, None] = None,
               image_size: Optional[int] = None,
               channels: Optional[int] = None) -> List[Dataset]:
    r"""The :obj:`splits` of a dataset, shaped for CIFAR-sized networks:
    digits get 3 channels and are resized to :obj:`image_size` (16 by
    default); other datasets come as stored.

    Args:
        name (str): One of :func:`list_datasets` but :obj:`'cifar10c'`.
        splits (Sequence[str], optional): (default: :obj:`('train', 'val')`)
        root (str, optional): The dataset's folder (not for digits).
            (default: :obj:`None`)
        image_size (int, optional): Side of the digits images.
            (default: :obj:`None`, 16)
        channels (int, optional): Channels of the digits images.
            (default: :obj:`None`, 3)
    """
    options = {}
    if name == 'digits':
        options = dict(image_size=image_size or 16, channels=channels or 3)
    elif image_size is not None or channels is not None:
        raise GhnlibError(f'image_size and channels apply to digits only, '
                          f'not {name!r}')
    return [get_dataset(name, split, root=root, **options) for split in splits]
