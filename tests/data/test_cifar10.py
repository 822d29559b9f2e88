import os
import pickle
import struct

import numpy as np
import pytest
import torch

from ghnlib.data import ImageDataset, load_cifar10
from ghnlib.errors import GhnlibError

IMAGES_PER_BATCH = 12
TEST_IMAGES = 10
CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
               'frog', 'horse', 'ship', 'truck']


class Python2Pickler(pickle._Pickler):
    """Writes what the real batches hold: Python 2 ``str`` opcodes for
    bytes and strings, and numpy's pre-2.0 module paths."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_str_py2(self, obj):
        raw = obj if isinstance(obj, bytes) else obj.encode('latin1')
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_str_py2
    dispatch[str] = save_str_py2


def dump_like_python2(obj, path):
    stream = pickle.io.BytesIO()
    Python2Pickler(stream, protocol=2).dump(obj)
    raw = stream.getvalue().replace(b'cnumpy._core.multiarray\n',
                                    b'cnumpy.core.multiarray\n')
    with open(path, 'wb') as handle:
        handle.write(raw)


def make_batch(num_images, seed, label_offset=0):
    rng = np.random.default_rng(seed)
    return {
        b'batch_label': b'batch %d' % seed,
        b'labels': [(i + label_offset) % 10 for i in range(num_images)],
        b'data': rng.integers(0, 256, (num_images, 3072), dtype=np.uint8),
        b'filenames': [b'img_%d.png' % i for i in range(num_images)],
    }


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    batches = [make_batch(IMAGES_PER_BATCH, seed, label_offset=seed)
               for seed in range(1, 6)]
    for index, batch in enumerate(batches, start=1):
        dump_like_python2(batch, folder / f'data_batch_{index}')
    dump_like_python2(make_batch(TEST_IMAGES, seed=9), folder / 'test_batch')
    dump_like_python2({b'label_names': [n.encode() for n in CLASS_NAMES],
                       b'num_cases_per_batch': IMAGES_PER_BATCH,
                       b'num_vis': 3072}, folder / 'batches.meta')
    return tmp_path


def read_raw(folder, name):
    with open(os.path.join(folder, name), 'rb') as handle:
        return pickle.load(handle, encoding='bytes')


def train_rows(root):
    folder = root / 'cifar-10-batches-py'
    batches = [read_raw(folder, f'data_batch_{i}') for i in range(1, 6)]
    data = np.concatenate([b[b'data'] for b in batches])
    labels = [label for b in batches for label in b[b'labels']]
    return data, labels


def test_written_batches_use_python2_opcodes(cifar_root):
    raw = (cifar_root / 'cifar-10-batches-py' / 'data_batch_1').read_bytes()
    assert b'cnumpy.core.multiarray\n_reconstruct' in raw
    assert pickle.SHORT_BINSTRING + b'\x04data' in raw


def test_pixels_land_at_channel_row_column(cifar_root):
    dataset = load_cifar10(cifar_root, split='train+val')
    data, labels = train_rows(cifar_root)
    assert len(dataset) == 5 * IMAGES_PER_BATCH
    assert dataset.images.dtype == torch.uint8
    assert dataset.labels.tolist() == labels
    for index, (c, h, w) in [(0, (0, 0, 0)), (13, (1, 5, 7)),
                             (30, (2, 31, 0)), (59, (2, 31, 31))]:
        assert int(dataset.images[index, c, h, w]) == int(
            data[index, c * 1024 + h * 32 + w])
    mean = torch.tensor(dataset.mean).view(3, 1, 1)
    std = torch.tensor(dataset.std).view(3, 1, 1)
    image, label = dataset[13]
    raw = torch.from_numpy(data[13].reshape(3, 32, 32)).float() / 255
    assert torch.allclose(image, (raw - mean) / std, atol=1e-5)
    assert label == labels[13]


def test_statistics_come_from_all_training_images(cifar_root):
    data, _ = train_rows(cifar_root)
    pixels = data.reshape(-1, 3, 1024).astype(np.float64) / 255
    expected_mean = pixels.mean(axis=(0, 2))
    expected_std = pixels.std(axis=(0, 2))
    for split in ('train', 'val', 'test'):
        dataset = load_cifar10(cifar_root, split=split)
        assert np.allclose(dataset.mean, expected_mean, atol=1e-12)
        assert np.allclose(dataset.std, expected_std, atol=1e-12)


def test_test_split_is_the_test_batch(cifar_root):
    dataset = load_cifar10(cifar_root, split='test')
    raw = read_raw(cifar_root / 'cifar-10-batches-py', 'test_batch')
    assert len(dataset) == TEST_IMAGES
    assert np.array_equal(dataset.images.numpy().reshape(TEST_IMAGES, -1),
                          raw[b'data'])
    assert dataset.labels.tolist() == raw[b'labels']
    assert dataset.class_names == CLASS_NAMES
    assert dataset.name == 'cifar10/test'


def image_keys(dataset):
    return [image.numpy().tobytes() for image in dataset.images]


def test_train_and_val_split_the_training_batches(cifar_root):
    train = load_cifar10(cifar_root, split='train')
    val = load_cifar10(cifar_root, split='val')
    both = load_cifar10(cifar_root, split='train+val')
    # val holds 1/12 of all 70 images, rounded: 6.
    assert (len(train), len(val), len(both)) == (54, 6, 60)
    assert not set(image_keys(train)) & set(image_keys(val))
    assert sorted(image_keys(train) + image_keys(val)) == sorted(
        image_keys(both))
    assert len(set(val.labels.tolist())) == 6  # one per class, stratified

    again = load_cifar10(cifar_root, split='val')
    other = load_cifar10(cifar_root, split='val', seed=1)
    assert torch.equal(again.images, val.images)
    assert not torch.equal(other.images, val.images)
    assert len(load_cifar10(cifar_root, split='val', val_fraction=0.25)) == 18


def test_root_may_be_the_batches_folder(cifar_root):
    inner = load_cifar10(cifar_root / 'cifar-10-batches-py', split='test')
    outer = load_cifar10(str(cifar_root), split='test')
    assert isinstance(inner, ImageDataset)
    assert torch.equal(inner.images, outer.images)


def test_python3_pickles_load_too(tmp_path):
    for index in range(1, 6):
        with open(tmp_path / f'data_batch_{index}', 'wb') as handle:
            pickle.dump(make_batch(4, index), handle)
    with open(tmp_path / 'test_batch', 'wb') as handle:
        pickle.dump({'data': make_batch(3, 0)[b'data'], 'labels': [1, 2, 3]},
                    handle)
    dataset = load_cifar10(tmp_path, split='test')
    assert dataset.labels.tolist() == [1, 2, 3]
    assert torch.equal(dataset.images.reshape(3, -1),
                       torch.from_numpy(make_batch(3, 0)[b'data']))
    assert dataset.class_names is None


def write_bad(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with open(path, 'wb') as handle:
            pickle.dump(content, handle, protocol=2)


GOOD = make_batch(IMAGES_PER_BATCH, 3)


@pytest.mark.parametrize('content, match', [
    ({**GOOD, b'data': GOOD[b'data'][:, :3000]}, r"b'data' is a uint8"),
    ({**GOOD, b'data': GOOD[b'data'].astype(np.float32)}, 'float32'),
    ({b'data': GOOD[b'data']}, "lack b'data' or b'labels'"),
    ({**GOOD, b'labels': GOOD[b'labels'][:5]}, "but 5 b'labels'"),
    ({**GOOD, b'labels': [10] * IMAGES_PER_BATCH}, r'\[10, 10\]'),
    ({**GOOD, b'labels': ['cat'] * IMAGES_PER_BATCH}, 'not a list'),
    ([GOOD[b'data']], 'not a dict'),
    (b'this is not a pickle', 'not a readable pickle batch'),
    (b'', 'not a readable pickle batch'),
])
def test_malformed_batch_names_the_file(cifar_root, content, match):
    path = cifar_root / 'cifar-10-batches-py' / 'data_batch_3'
    write_bad(path, content)
    with pytest.raises(GhnlibError, match=match) as error:
        load_cifar10(cifar_root)
    assert str(path) in str(error.value)
    assert "b'data'" in str(error.value)  # the expected layout


class RunsCode:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target, )


def test_pickles_that_would_run_code_are_refused(cifar_root, tmp_path):
    target = str(tmp_path / 'created_by_unpickling')
    path = cifar_root / 'cifar-10-batches-py' / 'test_batch'
    write_bad(path, {b'data': RunsCode(target), b'labels': []})
    with pytest.raises(GhnlibError, match='refusing to load posix.mkdir'):
        load_cifar10(cifar_root, split='test')
    assert not os.path.exists(target)


def test_missing_batch_names_the_file(cifar_root):
    path = cifar_root / 'cifar-10-batches-py' / 'data_batch_4'
    path.unlink()
    with pytest.raises(GhnlibError, match='no file') as error:
        load_cifar10(cifar_root, split='test')
    assert str(path) in str(error.value)


def test_missing_folder_describes_the_layout(tmp_path):
    with pytest.raises(GhnlibError, match='cifar-10-batches-py') as error:
        load_cifar10(tmp_path / 'nowhere')
    assert 'data_batch_1' in str(error.value)


def test_malformed_meta_names_the_file(cifar_root):
    path = cifar_root / 'cifar-10-batches-py' / 'batches.meta'
    write_bad(path, {b'label_names': [b'cat']})
    with pytest.raises(GhnlibError, match='label_names') as error:
        load_cifar10(cifar_root)
    assert str(path) in str(error.value)


@pytest.mark.parametrize('kwargs, match', [
    (dict(split='validation'), 'split'),
    (dict(val_fraction=0), r'\(0, 1\)'),
    (dict(val_fraction=0.99), 'non-empty'),
    (dict(val_fraction=0.001), 'non-empty'),
])
def test_bad_arguments_raise(cifar_root, kwargs, match):
    with pytest.raises(GhnlibError, match=match):
        load_cifar10(cifar_root, **kwargs)
