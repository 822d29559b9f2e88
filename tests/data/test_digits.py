import sys
from collections import Counter

import pytest
import torch
from sklearn.datasets import load_digits as sklearn_load_digits

from ghnlib.data import ImageDataset, load_digits
from ghnlib.errors import GhnlibError


def all_items(dataset):
    images, labels = zip(*dataset.__getitems__(range(len(dataset))))
    return torch.stack(images), torch.tensor(labels)


def row_counts(dataset):
    return Counter((tuple(image.view(-1).tolist()), int(label))
                   for image, label in zip(dataset.images, dataset.labels))


def test_whole_set_matches_sklearn_pixels():
    dataset = load_digits()
    reference = sklearn_load_digits()
    assert isinstance(dataset, ImageDataset) and len(dataset) == 1797
    assert dataset.image_shape == (1, 8, 8) and dataset.num_classes == 10
    assert dataset.labels.tolist() == reference.target.tolist()
    expected = torch.as_tensor(reference.images, dtype=torch.float32) / 16
    assert torch.allclose(dataset.images[:, 0], expected)
    assert dataset.images.min() == 0 and dataset.images.max() == 1


def interpolation_matrix(in_size, out_size):
    """Rows of 1-D bilinear weights, pixel centres aligned, edges clamped."""
    matrix = torch.zeros(out_size, in_size)
    for out in range(out_size):
        source = max((out + 0.5) * in_size / out_size - 0.5, 0.0)
        low = min(int(source), in_size - 1)
        high = min(low + 1, in_size - 1)
        weight = source - low
        matrix[out, low] += 1 - weight
        matrix[out, high] += weight
    return matrix


def test_resize_is_bilinear_and_channels_repeat():
    dataset = load_digits(image_size=32, channels=3)
    assert dataset.images.shape == (1797, 3, 32, 32)
    assert torch.equal(dataset.images[:, 0], dataset.images[:, 2])
    small = load_digits().images[:, 0]
    resize = interpolation_matrix(8, 32)
    for index in (0, 100, 1796):
        expected = resize @ small[index] @ resize.T
        assert torch.allclose(dataset.images[index, 1], expected, atol=1e-5)
    image, label = dataset[5]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert label == int(sklearn_load_digits().target[5])


@pytest.mark.parametrize('image_size, channels', [(8, 1), (32, 3)])
def test_normalisation_gives_zero_mean_unit_std(image_size, channels):
    dataset = load_digits(image_size=image_size, channels=channels)
    images, _ = all_items(dataset)
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros(channels), atol=1e-4)
    assert torch.allclose(std, torch.ones(channels), atol=1e-4)
    assert len(dataset.mean) == len(dataset.std) == channels


def test_splits_are_sized_disjoint_and_cover_the_set():
    whole = load_digits()
    parts = [load_digits(split=s) for s in ('train', 'val', 'test')]
    assert [len(p) for p in parts] == [1078, 360, 359]
    assert sum((row_counts(p) for p in parts), Counter()) == row_counts(whole)
    for part in parts:
        assert (part.mean, part.std) == (whole.mean, whole.std)


def test_splits_are_deterministic_by_seed():
    first = load_digits(split='val', seed=3)
    again = load_digits(split='val', seed=3)
    other = load_digits(split='val', seed=4)
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.labels, again.labels)
    assert not torch.equal(first.images, other.images)


def test_stratification_keeps_every_class_in_every_split():
    totals = torch.bincount(load_digits().labels).double()
    fractions = (0.8, 0.1, 0.1)
    for split, fraction in zip(('train', 'val', 'test'), fractions):
        part = load_digits(split=split, fractions=fractions)
        counts = torch.bincount(part.labels, minlength=10).double()
        assert bool((counts > 0).all())
        assert (counts - fraction * totals).abs().max() < 2


@pytest.mark.parametrize('kwargs, match', [
    (dict(split='validation'), 'split'),
    (dict(image_size=0), 'image_size'),
    (dict(channels=0), 'channels'),
    (dict(split='train', fractions=(0.5, 0.5)), 'three'),
    (dict(split='train', fractions=(0.5, 0.3, 0.3)), 'sum to 1'),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(GhnlibError, match=match):
        load_digits(**kwargs)


def test_missing_scikit_learn_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, 'sklearn.datasets', None)
    with pytest.raises(GhnlibError, match='pip install scikit-learn'):
        load_digits()
