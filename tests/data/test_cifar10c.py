import numpy as np
import pytest
import torch

from ghnlib.data import ImageDataset, list_cifar10c_corruptions, load_cifar10c
from ghnlib.errors import GhnlibError

PER_SEVERITY = 4


@pytest.fixture
def corrupted_root(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5 * PER_SEVERITY, 32, 32, 3),
                          dtype=np.uint8)
    labels = np.tile(np.arange(PER_SEVERITY, dtype=np.uint8) * 2, 5)
    labels[PER_SEVERITY:] += 1  # severities 2..5 get odd labels
    np.save(tmp_path / 'gaussian_noise.npy', images)
    np.save(tmp_path / 'labels.npy', labels)
    return tmp_path


@pytest.mark.parametrize('severity', [1, 2, 5])
def test_severity_selects_its_rows(corrupted_root, severity):
    images = np.load(corrupted_root / 'gaussian_noise.npy')
    labels = np.load(corrupted_root / 'labels.npy')
    rows = slice((severity - 1) * PER_SEVERITY, severity * PER_SEVERITY)
    dataset = load_cifar10c(corrupted_root, 'gaussian_noise', severity)
    assert isinstance(dataset, ImageDataset) and len(dataset) == PER_SEVERITY
    assert dataset.labels.tolist() == labels[rows].tolist()
    assert dataset.images.shape == (PER_SEVERITY, 3, 32, 32)
    first_row = severity * PER_SEVERITY - PER_SEVERITY
    assert int(dataset.images[1, 2, 5, 9]) == int(images[first_row + 1, 5, 9,
                                                         2])
    assert np.array_equal(dataset.images.numpy(),
                          images[rows].transpose(0, 3, 1, 2))
    assert dataset.name == f'cifar10c/gaussian_noise/{severity}'


def test_images_are_scaled_then_normalised_by_given_stats(corrupted_root):
    plain = load_cifar10c(corrupted_root, 'gaussian_noise', 3)
    image, _ = plain[2]
    assert torch.equal(image, plain.images[2].float() / 255)

    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    normalised = load_cifar10c(corrupted_root, 'gaussian_noise', 3,
                               mean=mean, std=std)
    expected = (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(
        std).view(3, 1, 1)
    assert torch.allclose(normalised[2][0], expected, atol=1e-6)
    assert (normalised.mean, normalised.std) == (mean, std)


def test_lists_corruptions(corrupted_root):
    np.save(corrupted_root / 'fog.npy', np.zeros((5, 32, 32, 3), np.uint8))
    (corrupted_root / 'README.txt').write_text('not an array')
    assert list_cifar10c_corruptions(corrupted_root) == ['fog',
                                                         'gaussian_noise']


@pytest.mark.parametrize('severity', [0, 6, True, '3', 2.0])
def test_bad_severity_raises(corrupted_root, severity):
    with pytest.raises(GhnlibError, match='severity must be an int from 1 '):
        load_cifar10c(corrupted_root, 'gaussian_noise', severity)


@pytest.mark.parametrize('corruption', ['fog', '../gaussian_noise', '',
                                        'labels'])
def test_unknown_corruption_lists_the_available_ones(corrupted_root,
                                                     corruption):
    with pytest.raises(GhnlibError, match=r"available: \['gaussian_noise'\]"):
        load_cifar10c(corrupted_root, corruption, 1)


def test_missing_labels_names_the_file(corrupted_root):
    (corrupted_root / 'labels.npy').unlink()
    with pytest.raises(GhnlibError, match='no file') as error:
        load_cifar10c(corrupted_root, 'gaussian_noise', 1)
    assert str(corrupted_root / 'labels.npy') in str(error.value)
    assert 'severity s fills rows' in str(error.value)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(GhnlibError, match='is not a folder'):
        load_cifar10c(tmp_path / 'nowhere', 'gaussian_noise', 1)
    with pytest.raises(GhnlibError, match='is not a folder'):
        list_cifar10c_corruptions(tmp_path / 'nowhere')


@pytest.mark.parametrize('name, array, match', [
    ('gaussian_noise', np.zeros((12, 32, 32, 3), np.uint8), r'\[12, 32, 32'),
    ('gaussian_noise', np.zeros((10, 32, 32, 3), np.float32), 'float32'),
    ('gaussian_noise', np.zeros((10, 3, 32, 32), np.uint8), r'\[10, 3, 32'),
    ('labels', np.zeros(15, np.int64), r'has 20 images'),
    ('labels', np.zeros(20, np.float32), 'float32'),
    ('labels', np.full(20, 10, np.int64), r'\[10, 10\]'),
    ('labels', np.array([{'x': 1}] * 20, dtype=object), 'not a readable'),
])
def test_malformed_arrays_name_the_file(corrupted_root, name, array, match):
    path = corrupted_root / f'{name}.npy'
    np.save(path, array, allow_pickle=True)
    with pytest.raises(GhnlibError, match=match) as error:
        load_cifar10c(corrupted_root, 'gaussian_noise', 2)
    assert str(path) in str(error.value)


def test_file_that_is_not_npy_raises(corrupted_root):
    path = corrupted_root / 'gaussian_noise.npy'
    path.write_bytes(b'garbage')
    with pytest.raises(GhnlibError, match='not a readable .npy') as error:
        load_cifar10c(corrupted_root, 'gaussian_noise', 2)
    assert str(path) in str(error.value)
