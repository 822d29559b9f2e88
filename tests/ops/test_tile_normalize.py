import pytest
import torch

from ghnlib.ops import tile_index, tile_normalize, tile_normalize_reference


def test_index_slices_channels_from_start_and_kernels_around_centre():
    assert tile_index(5, 3, centre=False).tolist() == [0, 1, 2]
    assert tile_index(5, 3, centre=True).tolist() == [1, 2, 3]
    assert tile_index(3, 1, centre=True).tolist() == [1]
    assert tile_index(3, 7, centre=False).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert tile_index(3, 7, centre=True).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_reference_against_explicit_loops():
    torch.manual_seed(0)
    src = torch.randn(2, 3, 2, 5, 5, dtype=torch.float64)
    shapes = [(4, 1, 3, 3), (2, 5, 7, 1)]
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64)
    shift = torch.tensor([1.0, -1.0], dtype=torch.float64)
    out = tile_normalize_reference(src, shapes, scale, shift)
    for n, target in enumerate(shapes):
        assert out[n].shape == target
        for o in range(target[0]):
            for i in range(target[1]):
                for a in range(target[2]):
                    for b in range(target[3]):
                        # channels: slice from 0 / tile; kernels: centre / tile
                        so = o if target[0] <= 3 else o % 3
                        si = i if target[1] <= 2 else i % 2
                        sa = a + (5 - target[2]) // 2 if target[2] <= 5 else a % 5
                        sb = b + (5 - target[3]) // 2 if target[3] <= 5 else b % 5
                        expected = src[n, so, si, sa, sb] * scale[n] + shift[n]
                        assert out[n][o, i, a, b] == expected


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_batched_equals_reference_forward_and_backward(dtype):
    generator = torch.Generator().manual_seed(1)
    src = torch.randn(7, 8, 6, 3, 3, dtype=dtype, generator=generator,
                      requires_grad=True)
    # 1-D biases, 2-D linear, 4-D convs: smaller and larger than the source
    # in every dimension, some shapes repeated.
    shapes = [(5, 1, 1, 1), (20, 1, 1, 1), (8, 6, 1, 1), (16, 13, 1, 1),
              (4, 3, 3, 3), (16, 12, 5, 5), (8, 6, 3, 3)]
    scale = torch.rand(7, dtype=dtype, generator=generator).requires_grad_()
    shift = torch.rand(7, dtype=dtype, generator=generator)
    expected = tile_normalize_reference(src, shapes, scale, shift)
    got = tile_normalize(src, shapes, scale, shift)
    tolerance = 0 if dtype == torch.float64 else 1e-6
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        torch.testing.assert_close(g, e, atol=tolerance, rtol=tolerance)
    weights = [torch.randn(s, dtype=dtype, generator=generator) for s in shapes]
    grads_expected = torch.autograd.grad(
        sum((w * e).sum() for w, e in zip(weights, expected)), (src, scale))
    grads_got = torch.autograd.grad(
        sum((w * g).sum() for w, g in zip(weights, got)), (src, scale))
    for e, g in zip(grads_expected, grads_got):
        torch.testing.assert_close(g, e)
    # Tiling sums gradients over every output that read a source element.
    # Target (20, 1, 1, 1) reads channel o % 8 at the kernel centre (1, 1).
    assert float(grads_got[0][1, 3, 0, 1, 1]) == pytest.approx(
        float((weights[1][3::8] * scale[1].detach()).sum()), rel=1e-5)
    assert float(grads_got[0][1, 3, 0, 0, 0]) == 0


def test_gradcheck():
    src = torch.randn(2, 3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, a: tile_normalize(s, [(5, 1, 1, 1), (2, 4, 5, 3)], a), (src, scale))


def test_bad_inputs_are_refused():
    src = torch.randn(2, 3, 2, 3, 3)
    with pytest.raises(ValueError, match='four positive'):
        tile_normalize_reference(src, [(1, 1, 1), (2, 2, 2, 2)], torch.ones(2))
    with pytest.raises(ValueError, match='expected 2 target shapes'):
        tile_normalize_reference(src, [(1, 1, 1, 1)], torch.ones(1))
    with pytest.raises(ValueError, match=r'\[N, s0, s1, s2, s3\]'):
        tile_normalize_reference(src[0], [(1, 1, 1, 1)], torch.ones(1))
