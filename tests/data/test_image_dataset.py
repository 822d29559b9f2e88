import pytest
import torch
from torch.utils.data import DataLoader

from ghnlib.data import ImageDataset
from ghnlib.errors import GhnlibError

MEAN = (0.5, 0.25, 0.125)
STD = (0.2, 0.4, 0.8)


def make_uint8(num_images=10, num_classes=4, normalise=True):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num_images, 3, 5, 4), dtype=torch.uint8,
                           generator=generator)
    labels = torch.arange(num_images) % num_classes
    stats = dict(mean=MEAN, std=STD) if normalise else {}
    return ImageDataset(images, labels, num_classes=num_classes, name='toy',
                        **stats)


def expected_item(dataset, index):
    image = dataset.images[index].double() / 255
    mean = torch.tensor(MEAN, dtype=torch.double).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.double).view(3, 1, 1)
    return ((image - mean) / std).float()


def test_item_is_scaled_and_normalised_per_channel():
    dataset = make_uint8()
    assert len(dataset) == 10
    for index in (0, 3, 9, -1):
        image, label = dataset[index]
        assert image.dtype == torch.float32 and image.shape == (3, 5, 4)
        assert torch.allclose(image, expected_item(dataset, index),
                              atol=1e-6)
        assert isinstance(label, int)
        assert label == int(dataset.labels[index])


def test_uint8_without_stats_lies_in_unit_interval():
    dataset = make_uint8(normalise=False)
    image, _ = dataset[2]
    assert torch.equal(image, dataset.images[2].float() / 255)
    assert dataset.mean is None and dataset.std is None


def test_float_images_are_not_rescaled_and_items_are_copies():
    images = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    dataset = ImageDataset(images, torch.tensor([0, 1, 0, 1]), num_classes=2)
    image, _ = dataset[1]
    assert image.dtype == torch.float32
    assert torch.equal(image, images[1].float())

    float32 = ImageDataset(images.float(), torch.tensor([0, 1, 0, 1]),
                           num_classes=2)
    item, _ = float32[0]
    item.fill_(7.0)
    assert torch.equal(float32.images[0], images[0].float())


def test_getitems_equals_stacked_getitem():
    dataset = make_uint8()
    indices = [7, 0, 3, 3, -2]
    batch = dataset.__getitems__(indices)
    assert len(batch) == len(indices)
    for (image, label), index in zip(batch, indices):
        single_image, single_label = dataset[index]
        assert torch.allclose(image, single_image, atol=1e-6)
        assert label == single_label and isinstance(label, int)


class BatchOnlyDataset(ImageDataset):
    def __getitem__(self, index):
        raise AssertionError('the DataLoader should fetch whole batches')


def test_dataloader_fetches_batches_with_getitems():
    plain = make_uint8(num_images=10)
    dataset = BatchOnlyDataset(plain.images, plain.labels, num_classes=4,
                               mean=MEAN, std=STD)
    batches = list(DataLoader(dataset, batch_size=4))
    assert [x.shape for x, _ in batches] == [(4, 3, 5, 4), (4, 3, 5, 4),
                                             (2, 3, 5, 4)]
    x, y = batches[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.shape == (4, )
    expected = torch.stack([expected_item(plain, i) for i in range(4)])
    assert torch.allclose(x, expected, atol=1e-6)
    assert torch.equal(torch.cat([y for _, y in batches]), plain.labels)


def test_subset_keeps_rows_and_normalisation():
    dataset = make_uint8()
    part = dataset.subset([8, 1, 4])
    assert isinstance(part, ImageDataset) and len(part) == 3
    assert torch.equal(part.images, dataset.images[[8, 1, 4]])
    assert part.labels.tolist() == [0, 1, 0]
    assert (part.mean, part.std, part.num_classes,
            part.name) == (MEAN, STD, 4, 'toy')
    assert torch.equal(part[0][0], dataset[8][0])

    mask = torch.zeros(10, dtype=torch.bool)
    mask[[2, 5]] = True
    assert torch.equal(dataset.subset(mask).images, dataset.images[[2, 5]])
    assert len(dataset.subset([])) == 0


@pytest.mark.parametrize('indices, match', [
    ([0, 10], r'\[-10, 10\)'),
    (torch.zeros(3, dtype=torch.bool), 'boolean mask'),
    (torch.tensor([0.5]), 'sequence of ints'),
])
def test_subset_rejects_bad_indices(indices, match):
    with pytest.raises(GhnlibError, match=match):
        make_uint8().subset(indices)


IMAGES = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
LABELS = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize('images, labels, kwargs, match', [
    (IMAGES[0], LABELS, {}, r'\[N, C, H, W\]'),
    (IMAGES.int(), LABELS, {}, 'uint8'),
    (IMAGES.numpy(), LABELS, {}, 'torch.as_tensor'),
    (IMAGES, LABELS.float(), {}, 'integer'),
    (IMAGES, LABELS[:3], {}, '4 images but 3 labels'),
    (IMAGES, torch.tensor([0, 1, 3, 1]), {}, r'\[0, 3\)'),
    (IMAGES, torch.tensor([0, -1, 2, 1]), {}, r'\[-1, 2\]'),
    (IMAGES, LABELS, dict(num_classes=0), 'positive int'),
    (IMAGES, LABELS, dict(mean=MEAN), 'together'),
    (IMAGES, LABELS, dict(mean=(0.5, ), std=(0.2, )), '3 channels'),
    (IMAGES, LABELS, dict(mean=MEAN, std=(0.2, 0.0, 0.1)), 'positive'),
    (IMAGES, LABELS, dict(class_names=['a', 'b']), 'class_names'),
])
def test_constructor_rejects_bad_inputs(images, labels, kwargs, match):
    kwargs = dict(dict(num_classes=3), **kwargs)
    with pytest.raises(GhnlibError, match=match):
        ImageDataset(images, labels, **kwargs)


def test_repr_and_image_shape():
    dataset = make_uint8()
    assert dataset.image_shape == (3, 5, 4)
    assert repr(dataset) == ('ImageDataset(toy, 10, image_shape=(3, 5, 4), '
                             'num_classes=4)')
