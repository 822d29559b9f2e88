import colorsys

import pytest
import torch
from scipy import ndimage

from ghnlib.data import ImageDataset, load_digits
from ghnlib.data.corruptions import (CORRUPTIONS, CorruptedDataset, corrupt,
                                     defocus_kernel)
from ghnlib.errors import GhnlibError

RANDOM_CORRUPTIONS = ('gaussian_noise', 'shot_noise', 'impulse_noise',
                      'speckle_noise')


@pytest.fixture(scope='module')
def digits():
    return load_digits(image_size=16, channels=3)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def test_names():
    assert set(CORRUPTIONS) == {
        'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
        'gaussian_blur', 'defocus_blur', 'pixelate', 'contrast', 'brightness'
    }


@pytest.mark.parametrize('name', CORRUPTIONS)
def test_shape_range_and_input_untouched(digits, name):
    images = digits.images[:32]
    before = images.clone()
    for severity in range(1, 6):
        out = corrupt(images, name, severity, generator=seeded(0))
        assert out.shape == images.shape and out.dtype == torch.float32
        assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(images, before)
    out = corrupt(images.double(), name, 5, generator=seeded(0))
    assert out.dtype == torch.float64 and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize('name', CORRUPTIONS)
def test_distortion_grows_with_severity(digits, name):
    images = digits.images[:200]
    distances = [
        float((corrupt(images, name, severity, generator=seeded(0)) -
               images).abs().mean()) for severity in range(1, 6)
    ]
    assert distances[0] > 0
    assert all(a < b for a, b in zip(distances, distances[1:])), distances


@pytest.mark.parametrize('name', RANDOM_CORRUPTIONS)
def test_generator_decides_the_randomness(digits, name):
    images = digits.images[:8]
    first = corrupt(images, name, 3, generator=seeded(7))
    assert torch.equal(first, corrupt(images, name, 3, generator=seeded(7)))
    assert not torch.equal(first, corrupt(images, name, 3,
                                          generator=seeded(8)))


def test_gaussian_noise_std_matches_severity():
    grey = torch.full((4, 3, 32, 32), 0.5)
    for severity, std in enumerate((0.04, 0.06, 0.08, 0.09, 0.10), start=1):
        noise = corrupt(grey, 'gaussian_noise', severity,
                        generator=seeded(severity)) - grey
        assert abs(float(noise.std()) - std) < 0.1 * std
        assert abs(float(noise.mean())) < 0.1 * std


def test_shot_noise_is_poisson():
    grey = torch.full((4, 3, 32, 32), 0.5)
    for severity, photons in enumerate((500, 250, 100, 75, 50), start=1):
        out = corrupt(grey, 'shot_noise', severity,
                      generator=seeded(severity))
        # Poisson(0.5 c) / c has variance 0.5 / c, and lies on a 1/c grid.
        expected_std = (0.5 / photons)**0.5
        assert abs(float(out.std()) - expected_std) < 0.1 * expected_std
        counts = out * photons
        assert torch.allclose(counts, counts.round(), atol=1e-3)


def test_impulse_noise_sets_a_fraction_to_black_or_white():
    grey = torch.full((4, 3, 32, 32), 0.5)
    out = corrupt(grey, 'impulse_noise', 5, generator=seeded(0))
    salt = float((out == 1).float().mean())
    pepper = float((out == 0).float().mean())
    assert abs(salt + pepper - 0.07) < 0.01
    assert abs(salt - pepper) < 0.01
    assert torch.all((out == 0) | (out == 1) | (out == 0.5))


def test_contrast_moves_pixels_toward_the_channel_mean_by_c():
    image = torch.tensor([[[[0.0, 0.2], [0.4, 1.0]]]])
    # Mean 0.4; severity 2 keeps c = 0.5 of each distance to it.
    expected = torch.tensor([[[[0.2, 0.3], [0.4, 0.7]]]])
    assert torch.allclose(corrupt(image, 'contrast', 2), expected)

    images = torch.rand(3, 3, 8, 8, generator=seeded(0))
    means = images.mean(dim=(2, 3), keepdim=True)
    for severity, factor in enumerate((0.75, 0.5, 0.4, 0.3, 0.15), start=1):
        out = corrupt(images, 'contrast', severity)
        assert torch.allclose(out - means, factor * (images - means),
                              atol=1e-6)


def hsv(image):
    """Per-pixel (h, s, v) of a [3, H, W] image, by the standard library."""
    pixels = image.permute(1, 2, 0).reshape(-1, 3).tolist()
    return torch.tensor([colorsys.rgb_to_hsv(*rgb) for rgb in pixels])


def test_brightness_raises_value_and_keeps_hue():
    image = torch.rand(1, 3, 6, 6, generator=seeded(3))
    image[0, :, 0, 0] = torch.tensor([0.9, 0.3, 0.1])  # V would pass 1
    image[0, :, 0, 1] = 0  # black: no hue, turns grey
    before = hsv(image[0])
    for severity, increase in enumerate((0.05, 0.1, 0.15, 0.2, 0.3), 1):
        out = corrupt(image, 'brightness', severity)
        after = hsv(out[0])
        assert torch.allclose(after[:, 2], (before[:, 2] + increase).clamp(
            max=1), atol=1e-5)
        coloured = before[:, 1] > 0
        hue_gap = (after[coloured, 0] - before[coloured, 0]).abs()
        assert torch.all(torch.minimum(hue_gap, 1 - hue_gap) < 1e-5)
        assert torch.allclose(after[coloured, 1], before[coloured, 1],
                              atol=1e-5)
        assert torch.allclose(out[0, :, 0, 1], torch.full((3, ), increase))


def test_brightness_of_grey_images_adds_c():
    images = torch.tensor([[[[0.0, 0.5], [0.8, 0.99]]]])
    out = corrupt(images, 'brightness', 5)
    assert torch.allclose(out, torch.tensor([[[[0.3, 0.8], [1.0, 1.0]]]]))


@pytest.mark.parametrize('name', ['gaussian_blur', 'defocus_blur'])
def test_blur_keeps_constants_and_removes_high_frequencies(name):
    constant = torch.full((2, 3, 9, 9), 0.37)
    assert torch.allclose(corrupt(constant, name, 5), constant)
    rows = torch.arange(12).view(-1, 1)
    checkerboard = ((rows + rows.T) % 2).float().expand(1, 1, 12, 12)
    out = corrupt(checkerboard, name, 3)
    # The highest frequency sits at the centre of the shifted spectrum.
    energy = (torch.fft.fft2(out - out.mean())[..., 6, 6]).abs()
    assert energy < 0.5 * torch.fft.fft2(checkerboard)[..., 6, 6].abs()
    assert abs(float(out.mean()) - 0.5) < 0.02


def test_gaussian_blur_matches_scipy():
    images = torch.rand(2, 3, 10, 11, generator=seeded(4),
                        dtype=torch.float64)
    for severity, sigma in enumerate((0.4, 0.6, 0.7, 0.8, 1.0), start=1):
        expected = ndimage.gaussian_filter(images.numpy(),
                                           sigma=(0, 0, sigma, sigma),
                                           mode='nearest', truncate=4.0)
        out = corrupt(images, 'gaussian_blur', severity)
        assert torch.allclose(out, torch.from_numpy(expected), atol=1e-12)


def test_defocus_blur_at_severity_5_is_a_3x3_box():
    # Radius 1.5 covers the 3x3 square (1^2 + 1^2 <= 1.5^2); a softening
    # of 0.1 pixels leaves it a 1/9 box up to exp(-1 / 0.02) ~ 2e-22.
    kernel = defocus_kernel(1.5, 0.1)
    assert float(kernel.sum()) == pytest.approx(1.0)
    images = torch.rand(1, 1, 7, 7, generator=seeded(5), dtype=torch.float64)
    out = corrupt(images, 'defocus_blur', 5)
    assert out[0, 0, 3, 3] == pytest.approx(float(images[0, 0, 2:5,
                                                         2:5].mean()))


def test_pixelate_averages_blocks():
    image = torch.arange(16.0).view(1, 1, 4, 4) / 15
    # Severity 5: a 4 * 0.65 -> 2 cell grid, each cell a 2x2 block mean.
    block_means = torch.tensor([[2.5, 4.5], [10.5, 12.5]]) / 15
    expected = block_means.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.allclose(corrupt(image, 'pixelate', 5)[0, 0], expected)


def test_bad_arguments_name_the_valid_values():
    images = torch.rand(1, 3, 4, 4)
    with pytest.raises(GhnlibError, match="unknown corruption 'fog'.*"
                       "gaussian_noise"):
        corrupt(images, 'fog', 1)
    for severity in (0, 6, True, '3', 2.0):
        with pytest.raises(GhnlibError, match=r'\(1, 2, 3, 4, 5\)'):
            corrupt(images, 'contrast', severity)
    with pytest.raises(GhnlibError, match=r'lie in \[0, 1\].*normalisation'):
        corrupt(images - 0.5, 'contrast', 1)
    with pytest.raises(GhnlibError, match='255'):
        corrupt((images * 255).to(torch.uint8), 'contrast', 1)
    with pytest.raises(GhnlibError, match=r'\[N, C, H, W\]'):
        corrupt(images[0], 'contrast', 1)
    with pytest.raises(GhnlibError, match='torch.Generator'):
        corrupt(images, 'gaussian_noise', 1, generator=0)


def all_items(dataset):
    images, labels = zip(*dataset.__getitems__(range(len(dataset))))
    return torch.stack(images), torch.tensor(labels)


def test_corrupted_dataset_normalises_like_the_clean_one(digits):
    clean = digits.subset(range(40))
    dataset = CorruptedDataset(clean, 'contrast', 4)
    assert isinstance(dataset, ImageDataset)
    assert (dataset.mean, dataset.std) == (clean.mean, clean.std)
    assert dataset.class_names == clean.class_names
    assert dataset.num_classes == 10 and dataset.name == 'digits/contrast-4'
    raw_means = clean.images.mean(dim=(2, 3), keepdim=True)
    raw = (clean.images - raw_means) * 0.3 + raw_means
    mean = torch.tensor(clean.mean).view(1, -1, 1, 1)
    std = torch.tensor(clean.std).view(1, -1, 1, 1)
    images, labels = all_items(dataset)
    assert torch.allclose(images, (raw - mean) / std, atol=1e-5)
    assert torch.equal(labels, clean.labels)
    image, label = dataset[3]
    assert torch.allclose(image, images[3]) and label == int(labels[3])


def test_corrupted_dataset_of_uint8_images_is_seeded():
    generator = seeded(9)
    raw = torch.randint(0, 256, (6, 3, 5, 5), generator=generator,
                        dtype=torch.uint8)
    clean = ImageDataset(raw, torch.arange(6) % 2, num_classes=2,
                         mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    dataset = CorruptedDataset(clean, 'shot_noise', 2, seed=3)
    expected = corrupt(raw.float() / 255, 'shot_noise', 2,
                       generator=seeded(3))
    assert dataset.images.dtype == torch.float32
    assert torch.equal(dataset.images, expected)
    mean = torch.tensor(clean.mean).view(-1, 1, 1)
    std = torch.tensor(clean.std).view(-1, 1, 1)
    assert torch.allclose(dataset[2][0], (expected[2] - mean) / std)
    again = CorruptedDataset(clean, 'shot_noise', 2, seed=3)
    other = CorruptedDataset(clean, 'shot_noise', 2, seed=4)
    assert torch.equal(again.images, dataset.images)
    assert not torch.equal(other.images, dataset.images)


def test_corrupted_dataset_rejects_bad_arguments(digits):
    with pytest.raises(GhnlibError, match='ImageDataset'):
        CorruptedDataset(digits.images, 'contrast', 1)
    with pytest.raises(GhnlibError, match='choose one of'):
        CorruptedDataset(digits, 'snow', 1)
    with pytest.raises(GhnlibError, match='severity'):
        CorruptedDataset(digits, 'contrast', 9)
    with pytest.raises(GhnlibError, match='seed must be an int'):
        CorruptedDataset(digits, 'contrast', 1, seed='0')
