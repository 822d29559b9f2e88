# Named after the dataset registry: tests/models already has a
# test_registry.py, and test files need unique basenames here.
import pickle

import h5py
import numpy as np
import pytest
import torch

from ghnlib.data import (ImageDataset, PCamDataset, get_dataset,
                         list_datasets, load_digits)
from ghnlib.errors import GhnlibError


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        batch = {b'data': rng.integers(0, 256, (12, 3072), dtype=np.uint8),
                 b'labels': [i % 10 for i in range(12)]}
        with open(folder / name, 'wb') as handle:
            pickle.dump(batch, handle, protocol=2)
    return tmp_path


def test_lists_the_datasets():
    assert list_datasets() == ['cifar10', 'cifar10c', 'digits', 'pcam']


@pytest.mark.parametrize('name', list_datasets())
def test_every_dataset_without_root_loads_or_asks_for_it(name):
    split = 'test' if name == 'cifar10c' else 'train'
    options = dict(corruption='fog', severity=1) if name == 'cifar10c' else {}
    try:
        dataset = get_dataset(name, split, **options)
    except GhnlibError as error:
        assert 'needs root=' in str(error) and 'folder with' in str(error)
    else:
        assert name == 'digits' and len(dataset) > 0


def test_digits_by_name_matches_the_loader():
    by_name = get_dataset('Digits', 'val', image_size=16, seed=2)
    direct = load_digits(split='val', image_size=16, seed=2)
    assert torch.equal(by_name.images, direct.images)
    assert torch.equal(by_name.labels, direct.labels)
    assert len(get_dataset('digits', None)) == 1797


def test_cifar10_by_name(cifar10_root):
    dataset = get_dataset('cifar10', 'test', root=cifar10_root)
    assert isinstance(dataset, ImageDataset) and len(dataset) == 12
    assert dataset.labels.tolist() == [i % 10 for i in range(12)]
    assert len(get_dataset('cifar10', root=cifar10_root,
                           val_fraction=0.25)) == 60 - 18


def test_cifar10c_by_name(tmp_path):
    images = np.arange(5 * 2 * 32 * 32 * 3, dtype=np.int64) % 256
    np.save(tmp_path / 'fog.npy', images.astype(np.uint8).reshape(10, 32, 32,
                                                                  3))
    np.save(tmp_path / 'labels.npy', np.arange(10, dtype=np.uint8))
    dataset = get_dataset('cifar10c', 'test', root=tmp_path,
                          corruption='fog', severity=4)
    assert dataset.labels.tolist() == [6, 7]
    with pytest.raises(GhnlibError, match=r"has splits \('test',\)"):
        get_dataset('cifar10c', root=tmp_path, corruption='fog', severity=4)
    with pytest.raises(GhnlibError, match=r"needs \['severity'\]"):
        get_dataset('cifar10c', 'test', root=tmp_path, corruption='fog')


def test_pcam_by_name(tmp_path):
    for part, key, data in (
            ('x', 'x', np.full((3, 96, 96, 3), 51, np.uint8)),
            ('y', 'y', np.array([1, 0, 1], np.uint8).reshape(3, 1, 1, 1))):
        name = f'camelyonpatch_level_2_split_valid_{part}.h5'
        with h5py.File(tmp_path / name, 'w') as handle:
            handle.create_dataset(key, data=data)
    dataset = get_dataset('pcam', 'val', root=tmp_path, max_items=2)
    assert isinstance(dataset, PCamDataset)
    assert dataset.labels.tolist() == [1, 0]
    assert torch.allclose(dataset[0][0], torch.full((3, 96, 96), 0.2))


@pytest.mark.parametrize('name, split, kwargs, match', [
    ('imagenet', 'train', {}, r"known datasets: \['cifar10', 'cifar10c'"),
    ('cifar10', 'train', {}, 'cifar-10-batches-py'),
    ('pcam', 'train', {}, 'camelyonpatch_level_2_split_'),
    ('digits', 'training', {}, 'has splits'),
    ('digits', 'train', dict(image_sise=32),
     r"does not take \['image_sise'\]"),
])
def test_bad_requests_raise(name, split, kwargs, match):
    with pytest.raises(GhnlibError, match=match):
        get_dataset(name, split, **kwargs)
