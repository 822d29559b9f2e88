import math

import pytest
import torch

from ghnlib.nn import ParameterDecoder


def test_cropped_weights_equal_the_crop_of_the_full_tensor():
    torch.manual_seed(0)
    decoder = ParameterDecoder(12, max_shape=(6, 5, 5, 5), rank=3,
                               hidden_channels=16)
    code = decoder.embed(torch.randn(4, 12))
    full = decoder.weights(code, (6, 5, 5, 5))
    assert full.shape == (4, 6, 5, 5, 5)
    crop = decoder.weights(code, (2, 3, 3, 1))
    # channels from the start, the kernel around its centre
    torch.testing.assert_close(crop, full[:, :2, :3, 1:4, 2:3])
    u = decoder.out_basis(code).view(4, 6, 3)
    v = decoder.in_basis(code).view(4, 5, 3)
    k = decoder.kernel(code).view(4, 3, 5, 5)
    expected = (u[:, 1, :] * v[:, 2, :] * k[:, :, 0, 4]).sum(-1) / math.sqrt(3)
    torch.testing.assert_close(full[:, 1, 2, 0, 4], expected)


def test_classifier_basis_and_vectors():
    decoder = ParameterDecoder(8, max_shape=(4, 4, 3, 3), num_classes=7)
    code = decoder.embed(torch.randn(2, 8))
    assert decoder.weights(code, (7, 4, 1, 1), classifier=True).shape == (
        2, 7, 4, 1, 1)
    assert decoder.vector_pair(code).shape == (2, 2, 4)


def test_bad_max_shape():
    with pytest.raises(ValueError, match='four positive sizes'):
        ParameterDecoder(8, max_shape=(4, 4, 3))


def test_norm_from_factors_equals_the_norm_of_the_crop():
    torch.manual_seed(1)
    decoder = ParameterDecoder(8, max_shape=(6, 5, 5, 5), rank=4)
    code = decoder.embed(torch.randn(3, 8))
    for crop in [(6, 5, 5, 5), (2, 3, 3, 1), (1, 1, 1, 1)]:
        w, sq_norm = decoder.weights(code, crop, return_norm=True)
        torch.testing.assert_close(sq_norm, w.pow(2).sum((1, 2, 3, 4)))
