r"""Image classification datasets: in-memory and lazily read sets, splits,
and loaders by name."""
from ghnlib.data.registry import (DATASETS, get_dataset, get_splits,
                                  list_datasets, register_dataset)
from ghnlib.data.image_dataset import ImageDataset
from ghnlib.data.image_transform import ImageTransform
from ghnlib.data.splits import split_dataset
from ghnlib.data.digits import load_digits
from ghnlib.data.cifar10 import load_cifar10
from ghnlib.data.cifar10c import load_cifar10c, list_cifar10c_corruptions
from ghnlib.data.pcam import PCamDataset, load_pcam
from ghnlib.data.corruptions import (CORRUPTION_PARAMETERS, CORRUPTIONS,
                                     CorruptedDataset, corrupt)

__all__ = [
    'ImageDataset',
    'ImageTransform',
    'split_dataset',
    'load_digits',
    'load_cifar10',
    'load_cifar10c',
    'list_cifar10c_corruptions',
    'PCamDataset',
    'load_pcam',
    'get_dataset',
    'get_splits',
    'list_datasets',
    'register_dataset',
    'DATASETS',
    'CORRUPTIONS',
    'CORRUPTION_PARAMETERS',
    'corrupt',
    'CorruptedDataset',
]
