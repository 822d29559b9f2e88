import pickle
import sys

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ghnlib.data import PCamDataset, load_pcam
from ghnlib.errors import GhnlibError

SIZES = {'train': 10, 'valid': 6, 'test': 4}


def pcam_path(root, split, part):
    return root / f'camelyonpatch_level_2_split_{split}_{part}.h5'


def write_split(root, split, num_images, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num_images, 96, 96, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (num_images, 1, 1, 1), dtype=np.uint8)
    # The real files are chunked and compressed per patch.
    with h5py.File(pcam_path(root, split, 'x'), 'w') as handle:
        handle.create_dataset('x', data=images, chunks=(1, 96, 96, 3),
                              compression='gzip')
    with h5py.File(pcam_path(root, split, 'y'), 'w') as handle:
        handle.create_dataset('y', data=labels)
    return images, labels.reshape(-1)


@pytest.fixture
def pcam_root(tmp_path):
    for seed, (split, size) in enumerate(SIZES.items()):
        write_split(tmp_path, split, size, seed)
    return tmp_path


def read_split(root, split):
    with h5py.File(pcam_path(root, split, 'x'), 'r') as handle:
        images = handle['x'][:]
    with h5py.File(pcam_path(root, split, 'y'), 'r') as handle:
        labels = handle['y'][:].reshape(-1)
    return images, labels


def as_chw(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def test_items_are_unit_chw_images_with_labels(pcam_root):
    images, labels = read_split(pcam_root, 'train')
    dataset = load_pcam(pcam_root, split='train')
    assert isinstance(dataset, PCamDataset) and len(dataset) == 10
    assert dataset.num_classes == 2 and dataset.image_shape == (3, 96, 96)
    assert dataset.labels.tolist() == labels.tolist()
    for index in (0, 7, -1):
        image, label = dataset[index]
        assert image.dtype == torch.float32 and image.shape == (3, 96, 96)
        assert image.is_contiguous()
        assert torch.equal(image, as_chw(images)[index])
        assert label == int(labels[index]) and isinstance(label, int)
    assert float(dataset[3][0][1, 4, 7]) == pytest.approx(
        images[3, 4, 7, 1] / 255, abs=1e-7)


def test_dataloader_keeps_sampler_order(pcam_root):
    images, labels = read_split(pcam_root, 'train')
    dataset = load_pcam(pcam_root)
    order = [7, 2, 2, 9, 3, 4, 5, 6, 0]
    loader = DataLoader(dataset, batch_size=4, sampler=order)
    x = torch.cat([x for x, _ in loader])
    y = torch.cat([y for _, y in loader])
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, as_chw(images)[order])
    assert y.tolist() == labels[order].tolist()


def test_getitems_equals_getitem_for_runs_and_scattered(pcam_root):
    dataset = load_pcam(pcam_root)
    for indices in ([3, 4, 5, 6], [8, 1, 5], [4, 4], [-1, 0], []):
        batch = dataset.__getitems__(indices)
        assert len(batch) == len(indices)
        for (image, label), index in zip(batch, indices):
            single_image, single_label = dataset[index]
            assert torch.equal(image, single_image)
            assert label == single_label


def test_worker_processes_open_their_own_file(pcam_root):
    dataset = load_pcam(pcam_root, split='val')
    dataset[0]  # opens the file in this process before the workers fork
    serial = list(DataLoader(dataset, batch_size=2))
    parallel = list(DataLoader(dataset, batch_size=2, num_workers=2))
    assert len(parallel) == 3
    for (x, y), (x_parallel, y_parallel) in zip(serial, parallel):
        assert torch.equal(x, x_parallel) and torch.equal(y, y_parallel)

    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[5][0], dataset[5][0])


def test_splits_read_their_files(pcam_root):
    for split, file_split in (('val', 'valid'), ('test', 'test')):
        images, labels = read_split(pcam_root, file_split)
        dataset = load_pcam(pcam_root, split=split)
        assert len(dataset) == SIZES[file_split]
        assert torch.equal(dataset[1][0], as_chw(images)[1])
        assert dataset.labels.tolist() == labels.tolist()
        assert dataset.name == f'pcam/{split}'


def test_max_items_keeps_the_first_patches(pcam_root):
    images, labels = read_split(pcam_root, 'train')
    dataset = load_pcam(pcam_root, max_items=4)
    assert len(dataset) == 4
    assert dataset.labels.tolist() == labels[:4].tolist()
    assert torch.equal(dataset[-1][0], as_chw(images)[3])
    with pytest.raises(IndexError):
        dataset[4]
    with pytest.raises(IndexError):
        dataset.__getitems__([0, 4])
    assert len(load_pcam(pcam_root, max_items=100)) == 10


def test_mean_and_std_normalise(pcam_root):
    images, _ = read_split(pcam_root, 'test')
    mean, std = (0.7, 0.55, 0.7), (0.2, 0.25, 0.2)
    dataset = load_pcam(pcam_root, split='test', mean=mean, std=std)
    expected = (as_chw(images)[2] - torch.tensor(mean).view(3, 1, 1)
                ) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(dataset[2][0], expected, atol=1e-6)
    (batched, _), = dataset.__getitems__([2])
    assert torch.allclose(batched, expected, atol=1e-6)


def test_missing_file_names_it(pcam_root):
    path = pcam_path(pcam_root, 'valid', 'y')
    path.unlink()
    with pytest.raises(GhnlibError, match='no file') as error:
        load_pcam(pcam_root, split='val')
    assert str(path) in str(error.value)
    assert 'camelyonpatch_level_2_split_' in str(error.value)


def rewrite(path, key, data):
    path.unlink()
    with h5py.File(path, 'w') as handle:
        handle.create_dataset(key, data=data)


@pytest.mark.parametrize('part, key, data, match', [
    ('x', 'images', np.zeros((4, 96, 96, 3), np.uint8), "no dataset 'x'"),
    ('x', 'x', np.zeros((4, 96, 96), np.uint8), r'\[4, 96, 96\]'),
    ('x', 'x', np.zeros((4, 96, 96, 3), np.float32), 'float32'),
    ('y', 'y', np.zeros((3, 1, 1, 1), np.uint8), 'for 4 images'),
    ('y', 'y', np.zeros((4, 2), np.uint8), r'\[4, 2\]'),
    ('y', 'y', np.full((4, 1, 1, 1), 2, np.uint8), 'labels in'),
])
def test_malformed_files_name_them(pcam_root, part, key, data, match):
    path = pcam_path(pcam_root, 'test', part)
    rewrite(path, key, data)
    with pytest.raises(GhnlibError, match=match) as error:
        load_pcam(pcam_root, split='test')
    assert str(path) in str(error.value)


def test_non_hdf5_file_raises(pcam_root):
    path = pcam_path(pcam_root, 'test', 'x')
    path.write_bytes(b'gzip me first')
    with pytest.raises(GhnlibError, match='not a readable HDF5') as error:
        load_pcam(pcam_root, split='test')
    assert str(path) in str(error.value)


@pytest.mark.parametrize('kwargs, match', [
    (dict(split='valid'), 'split must be one of'),
    (dict(max_items=0), 'max_items'),
    (dict(mean=(0.5, 0.5)), 'together'),
])
def test_bad_arguments_raise(pcam_root, kwargs, match):
    with pytest.raises(GhnlibError, match=match):
        load_pcam(pcam_root, **kwargs)


def test_missing_root_raises(tmp_path):
    with pytest.raises(GhnlibError, match='is not a folder'):
        load_pcam(tmp_path / 'nowhere')


def test_missing_h5py_is_explained(pcam_root, monkeypatch):
    monkeypatch.setitem(sys.modules, 'h5py', None)
    with pytest.raises(GhnlibError, match='pip install h5py'):
        load_pcam(pcam_root)
