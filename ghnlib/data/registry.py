r"""Datasets by name: :func:`list_datasets` and :func:`get_dataset`."""
import inspect
import os
from typing import Callable, List, Optional, Sequence, Union

from torch.utils.data import Dataset

from ghnlib.errors import GhnlibError
from ghnlib.utils.registry import Registry

__all__ = ['DATASETS', 'register_dataset', 'list_datasets', 'get_dataset',
           'get_splits']


#: Every dataset loader; an entry's metadata holds its ``folder_layout``
#: (:obj:`None` for bundled data, which needs no root) and its ``splits``.
DATASETS: Registry[Callable[..., Dataset]] = Registry(
    'dataset', normalize=str.lower,
    hint='Call ghnlib.data.list_datasets() to see the known datasets.')


def register_dataset(name: str, *, folder_layout: Optional[str],
                     splits: Sequence[Optional[str]]
                     ) -> Callable[[Callable], Callable]:
    r"""Decorator that adds a dataset loader to the registry, so that
    :func:`get_dataset` finds it by name.

    Args:
        name (str): The dataset's name (case-insensitive).
        folder_layout (str, optional): What its root folder holds, for
            errors; :obj:`None` for a dataset bundled with a package.
        splits (Sequence[str]): The splits the loader accepts.
    """
    return DATASETS.register(name, folder_layout=folder_layout,
                             splits=tuple(splits))


def list_datasets() -> List[str]:
    """The names :func:`get_dataset` accepts, sorted."""
    return DATASETS.names()


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
    if name not in DATASETS:
        raise GhnlibError(f'get_dataset: unknown dataset {name!r}; known '
                          f'datasets: {list_datasets()}')
    entry = DATASETS.entry(name)
    name, loader = entry.name, entry.obj
    folder_layout, splits = (entry.metadata['folder_layout'],
                             entry.metadata['splits'])
    if split not in splits:
        raise GhnlibError(f'get_dataset: {name!r} has splits '
                          f'{splits}, got split={split!r}')

    parameters = inspect.signature(loader).parameters
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

    if folder_layout is None:
        return loader(split=split, **kwargs)
    if root is None:
        raise GhnlibError(f'get_dataset: {name!r} needs root=, the folder '
                          f'with {folder_layout}')
    if name == 'cifar10c':
        return loader(root, **kwargs)
    return loader(root, split=split, **kwargs)


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
