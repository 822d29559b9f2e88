import pytest
import torch

from ghnlib.data import ImageTransform, load_digits
from ghnlib.errors import GhnlibError


def test_raw_digits_become_what_the_recipe_trained_on():
    recipe = load_digits(image_size=16, channels=3)
    transform = ImageTransform(16, 3, recipe.mean, recipe.std)
    raw = load_digits()  # 8×8, grey, values in [0, 1]
    images = torch.stack([raw.images[i] for i in range(5)])
    expected = torch.stack([recipe[i][0] for i in range(5)])
    assert torch.allclose(transform(images), expected, atol=1e-5)
    assert torch.allclose(transform(images[0]), expected[0], atol=1e-5)


def test_round_trip_and_bad_inputs():
    transform = ImageTransform(8, 1, [0.5], [0.25])
    assert ImageTransform.from_dict(transform.to_dict()).to_dict() == \
        transform.to_dict()
    assert torch.allclose(transform(torch.ones(1, 8, 8)),
                          torch.full((1, 8, 8), 2.0))
    with pytest.raises(GhnlibError, match='one value per channel'):
        ImageTransform(8, 3, [0.5], [0.25])
    with pytest.raises(GhnlibError, match='std must be positive'):
        ImageTransform(8, 1, [0.5], [0.0])
    with pytest.raises(GhnlibError, match='needs image_size'):
        ImageTransform.from_dict({'channels': 1})
    with pytest.raises(GhnlibError, match='channels'):
        ImageTransform(8, 3, [0] * 3, [1] * 3)(torch.ones(2, 8, 8))
