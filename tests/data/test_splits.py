import pytest
import torch

from ghnlib.data import ImageDataset, split_dataset
from ghnlib.errors import GhnlibError


def make_indexed(labels):
    """A dataset whose image i holds the value i, so a part's images tell
    which rows it took."""
    labels = torch.as_tensor(labels)
    images = torch.arange(labels.numel(), dtype=torch.float32)
    return ImageDataset(images.view(-1, 1, 1, 1), labels,
                        num_classes=int(labels.max()) + 1, mean=(0.5, ),
                        std=(2.0, ), name='indexed')


def rows(part):
    return part.images.view(-1).long().tolist()


def test_parts_are_disjoint_cover_and_sized_by_fractions():
    dataset = make_indexed(torch.arange(100) % 4)
    parts = split_dataset(dataset, (0.6, 0.2, 0.2))
    assert [len(p) for p in parts] == [60, 20, 20]
    taken = [r for part in parts for r in rows(part)]
    assert sorted(taken) == list(range(100))
    for part in parts:
        assert rows(part) == sorted(rows(part))
        assert torch.equal(part.labels, dataset.labels[rows(part)])
        assert (part.mean, part.std, part.name) == ((0.5, ), (2.0, ),
                                                    'indexed')


def test_sizes_round_by_largest_remainder():
    parts = split_dataset(make_indexed(torch.arange(7) % 2), (1 / 3, ) * 3,
                          stratify=False)
    assert [len(p) for p in parts] == [3, 2, 2]


def class_count_error(parts, labels, fractions):
    totals = torch.bincount(labels).double()
    return max(
        (torch.bincount(part.labels, minlength=totals.numel()).double() -
         fraction * totals).abs().max().item()
        for part, fraction in zip(parts, fractions))


def test_two_way_stratified_split_rounds_each_class_count():
    labels = torch.tensor([0] * 71 + [1] * 19 + [2] * 10)
    labels = labels[torch.randperm(100, generator=torch.Generator()
                                   .manual_seed(3))]
    parts = split_dataset(make_indexed(labels), (0.7, 0.3), seed=5)
    assert [len(p) for p in parts] == [70, 30]
    assert class_count_error(parts, labels, (0.7, 0.3)) < 1
    assert sorted(r for p in parts for r in rows(p)) == list(range(100))


def test_stratified_parts_keep_class_proportions():
    generator = torch.Generator().manual_seed(0)
    for trial in range(20):
        num_classes = int(torch.randint(2, 8, (1, ), generator=generator))
        labels = torch.randint(0, num_classes, (150, ), generator=generator)
        labels[:num_classes] = torch.arange(num_classes)
        weights = torch.rand(4, generator=generator) + 0.1
        fractions = (weights / weights.sum()).tolist()
        fractions[-1] = 1 - sum(fractions[:-1])
        parts = split_dataset(make_indexed(labels), fractions, seed=trial)
        assert class_count_error(parts, labels, fractions) < 2
        assert sorted(r for p in parts for r in rows(p)) == list(range(150))


def test_unstratified_split_covers_and_can_unbalance():
    labels = torch.tensor([0] * 50 + [1] * 50)
    dataset = make_indexed(labels)
    imbalance = []
    for seed in range(5):
        first, second = split_dataset(dataset, (0.5, 0.5), seed=seed,
                                      stratify=False)
        assert sorted(rows(first) + rows(second)) == list(range(100))
        imbalance.append(int((first.labels == 0).sum()) - 25)
        stratified, _ = split_dataset(dataset, (0.5, 0.5), seed=seed)
        assert int((stratified.labels == 0).sum()) == 25
    assert any(value != 0 for value in imbalance)


def test_same_seed_same_parts_other_seed_other_parts():
    dataset = make_indexed(torch.arange(60) % 3)
    first = split_dataset(dataset, (0.5, 0.25, 0.25), seed=11)
    again = split_dataset(dataset, (0.5, 0.25, 0.25), seed=11)
    other = split_dataset(dataset, (0.5, 0.25, 0.25), seed=12)
    assert [rows(p) for p in first] == [rows(p) for p in again]
    assert [rows(p) for p in first] != [rows(p) for p in other]


@pytest.mark.parametrize('fractions, match', [
    ((0.5, 0.4), 'sum to 1'),
    ((0.5, 0.5 + 1e-5), 'sum to 1'),
    ((1.2, -0.2), 'positive'),
    ((), 'positive'),
    (('a', 'b'), 'numbers'),
    ((0.999, 0.001), 'empty'),
])
def test_bad_fractions_raise(fractions, match):
    with pytest.raises(GhnlibError, match=match):
        split_dataset(make_indexed(torch.arange(20) % 2), fractions)


def test_fractions_within_tolerance_are_accepted():
    parts = split_dataset(make_indexed(torch.arange(20) % 2),
                          (0.5, 0.5 + 5e-7))
    assert [len(p) for p in parts] == [10, 10]


def test_only_image_datasets_are_split():
    with pytest.raises(GhnlibError, match='ImageDataset'):
        split_dataset([(torch.zeros(1), 0)] * 4, (0.5, 0.5))
