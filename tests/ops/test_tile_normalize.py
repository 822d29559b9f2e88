import itertools
import math

import pytest
import torch

from ghnlib.ops import (backend, tile_index, tile_normalize,
                        tile_normalize_reference)
from ghnlib.ops.extension import load_extension


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


# The compiled op (ghnlib._C, csrc/) against the reference, on every device.

CUDA = pytest.param('cuda', marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')])
DEVICES = ['cpu', CUDA]
SOURCE_SIZES = (6, 5, 3, 4)  # unequal everywhere: a swapped dimension shows


def compiled_ops(device='cpu'):
    extension = load_extension()
    assert extension is not None, (
        'ghnlib._C is not built; build it with `pip install '
        '--no-build-isolation -e .`')
    if torch.device(device).type == 'cuda':
        assert extension.with_cuda, ('ghnlib._C was built without CUDA; '
                                     'rebuild it where a CUDA toolkit is found')
    return torch.ops.ghnlib


def layout(targets, device='cpu'):
    sizes = [math.prod(target) for target in targets]
    return (torch.tensor(targets, dtype=torch.long, device=device),
            torch.tensor([0, *itertools.accumulate(sizes)], device=device))


def mixed_batch(dtype, device, num_random=24, seed=0, sizes=SOURCE_SIZES):
    """Sources, targets, scales and shifts: 1-D biases as (t, 1, 1, 1), 2-D
    linear, 4-D conv targets smaller, equal and larger than the source in
    every dimension (and equal in some, smaller or larger in others), then
    random targets up to three times the source."""
    generator = torch.Generator().manual_seed(seed)
    s0, s1, s2, s3 = sizes
    targets = [(4, 1, 1, 1), (20, 1, 1, 1), (6, 5, 1, 1), (13, 11, 1, 1),
               tuple(sizes), (2, 3, 1, 2), (13, 11, 7, 9), (1, 1, 1, 1),
               (7, 2, 5, 1), (3, 9, 2, 8),
               (s0, s1, s2, 2 * s3 + 1), (1, s1, s2, s3), (2 * s0, s1, s2, s3),
               (s0, 1, s2, s3), (s0, s1, 1, s3), (s0, 2 * s1, s2, s3),
               (s0, s1, s2, 1)]
    high = torch.tensor([3 * s for s in sizes])
    for _ in range(num_random):
        draw = torch.rand(4, generator=generator) * high
        targets.append(tuple(int(t) + 1 for t in draw))
    count = len(targets)
    src = torch.randn(count, *sizes, generator=generator, dtype=torch.float64)
    scale = torch.rand(count, generator=generator, dtype=torch.float64) * 2
    shift = torch.randn(count, generator=generator, dtype=torch.float64)
    return (src.to(device, dtype), targets, scale.to(device, dtype),
            shift.to(device, dtype))


def flat_reference(src, targets, scale, shift):
    return torch.cat([y.reshape(-1) for y in
                      tile_normalize_reference(src, targets, scale, shift)])


def assert_parity(got, expected, dtype):
    if dtype == torch.float64:
        assert torch.equal(got, expected)
    elif dtype == torch.float32:
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    else:
        torch.testing.assert_close(got, expected)


# Decoded weight blocks, vectors (the GHN's [M, D, 1, 1, 1]), 2-D blocks.
SOURCES = [SOURCE_SIZES, (8, 1, 1, 1), (4, 3, 1, 1)]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('with_shift', [True, False])
@pytest.mark.parametrize('sizes', SOURCES, ids=str)
def test_compiled_forward_matches_reference(device, dtype, with_shift, sizes):
    ops = compiled_ops(device)
    src, targets, scale, shift = mixed_batch(dtype, device, sizes=sizes)
    shift = shift if with_shift else None
    shapes, offsets = layout(targets)
    got = ops.tile_normalize(src, shapes, offsets, scale, shift)
    assert got.shape == (int(offsets[-1]), ) and got.dtype == dtype
    assert_parity(got, flat_reference(src, targets, scale, shift), dtype)


@pytest.mark.parametrize('device', DEVICES)
def test_compiled_op_takes_layout_on_the_device_and_any_source_layout(device):
    ops = compiled_ops(device)
    src, targets, scale, shift = mixed_batch(torch.float64, device)
    shapes, offsets = layout(targets, device)
    # A non-contiguous source (a slice of a larger block) is fitted as is.
    wide = torch.randn(src.size(0), 9, 8, 5, 6, dtype=src.dtype, device=device)
    wide[:, :6, :5, :3, :4] = src
    sliced = wide[:, :6, :5, :3, :4]
    assert not sliced.is_contiguous()
    got = ops.tile_normalize(sliced, shapes, offsets, scale, shift)
    assert torch.equal(got, flat_reference(src, targets, scale, shift))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('with_shift', [True, False])
def test_compiled_op_gradcheck(device, with_shift):
    ops = compiled_ops(device)
    src, targets, scale, shift = mixed_batch(torch.float64, device, num_random=3,
                                             sizes=(3, 2, 3, 2))
    shapes, offsets = layout(targets)
    inputs = [src.requires_grad_(), scale.requires_grad_()]
    if with_shift:
        inputs.append(shift.requires_grad_())
    assert torch.autograd.gradcheck(
        lambda *args: ops.tile_normalize(args[0], shapes, offsets, *args[1:]),
        inputs)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('sizes', SOURCES, ids=str)
def test_compiled_gradients_match_reference(device, dtype, sizes):
    ops = compiled_ops(device)
    src, targets, scale, shift = mixed_batch(dtype, device, sizes=sizes)
    inputs = (src.requires_grad_(), scale.requires_grad_(),
              shift.requires_grad_())
    shapes, offsets = layout(targets)
    weights = torch.randn(int(offsets[-1]), dtype=dtype,
                          generator=torch.Generator().manual_seed(3)).to(device)
    expected = torch.autograd.grad(
        (weights * flat_reference(*inputs[:1], targets, *inputs[1:])).sum(),
        inputs)
    got = torch.autograd.grad(
        (weights * ops.tile_normalize(src, shapes, offsets, scale, shift)).sum(),
        inputs)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_compiled_gradient_of_sliced_targets_is_the_reference_bit_for_bit(
        device, dtype):
    # Where no target tiles, each source element is read at most once: its
    # gradient is one product a * grad_out (or 0), rounded once, as in the
    # reference.
    ops = compiled_ops(device)
    generator = torch.Generator().manual_seed(4)
    s0, s1, s2, s3 = SOURCE_SIZES
    targets = [(4, 1, 1, 1), (6, 5, 1, 1), tuple(SOURCE_SIZES), (2, 3, 1, 2),
               (1, 1, 1, 1), (s0, s1, 1, s3), (1, s1, s2, s3), (5, 4, 3, 3)]
    src = torch.randn(len(targets), *SOURCE_SIZES, dtype=dtype,
                      generator=generator).to(device).requires_grad_()
    scale = torch.rand(len(targets), dtype=dtype,
                       generator=generator).to(device)
    shapes, offsets = layout(targets)
    weights = torch.randn(int(offsets[-1]), dtype=dtype,
                          generator=generator).to(device)
    (expected, ) = torch.autograd.grad(
        (weights * flat_reference(src, targets, scale, None)).sum(), src)
    (got, ) = torch.autograd.grad(
        (weights * ops.tile_normalize(src, shapes, offsets, scale)).sum(), src)
    assert torch.equal(got, expected)
    assert bool((got == 0).any())  # elements no target reads


def test_compiled_gradients_of_long_rows_match_reference():
    # Rows of 4096 source elements and more are split into work items of
    # part of a row each.
    ops = compiled_ops()
    generator = torch.Generator().manual_seed(6)
    sizes = (3, 5000, 1, 1)
    targets = [sizes, (3, 12001, 1, 1), (2, 4500, 1, 1), (7, 5000, 1, 1),
               (1, 9000, 1, 1)]
    src = torch.randn(len(targets), *sizes, dtype=torch.float64,
                      generator=generator).requires_grad_()
    scale = torch.rand(len(targets), dtype=torch.float64,
                       generator=generator).requires_grad_()
    shift = torch.randn(len(targets), dtype=torch.float64,
                        generator=generator).requires_grad_()
    shapes, offsets = layout(targets)
    weights = torch.randn(int(offsets[-1]), dtype=torch.float64,
                          generator=generator)
    inputs = (src, scale, shift)
    expected = torch.autograd.grad(
        (weights * flat_reference(src, targets, scale, shift)).sum(), inputs)
    got = torch.autograd.grad(
        (weights * ops.tile_normalize(src, shapes, offsets, scale,
                                      shift)).sum(), inputs)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize('device', DEVICES)
def test_compiled_backward_computes_only_requested_gradients(device):
    ops = compiled_ops(device)
    src, targets, scale, _ = mixed_batch(torch.float64, device, num_random=2)
    shapes, offsets = layout(targets)
    grad_out = torch.ones(int(offsets[-1]), dtype=src.dtype, device=device)
    grad_src, grad_scale, grad_shift = ops.tile_normalize_backward(
        grad_out, src, shapes, offsets, scale, [True, False, False])
    assert grad_src.shape == src.shape
    assert grad_scale is None and grad_shift is None
    grad_src, grad_scale, grad_shift = ops.tile_normalize_backward(
        grad_out, src, shapes, offsets, scale, [False, True, True])
    assert grad_src is None
    # With grad_out = 1, grad_shift counts each tensor's outputs.
    assert grad_shift.tolist() == [float(math.prod(t)) for t in targets]


def test_compiled_backward_is_deterministic_across_thread_counts():
    ops = compiled_ops()
    # 32 * 16 * 3 * 3 source elements: more than one backward work item.
    src, targets, scale, _ = mixed_batch(torch.float32, 'cpu', sizes=(32, 16, 3, 3))
    shapes, offsets = layout(targets)
    grad_out = torch.randn(int(offsets[-1]), generator=torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 1):
            torch.set_num_threads(count)
            results.append(ops.tile_normalize_backward(
                grad_out, src, shapes, offsets, scale, [True, True, True]))
    finally:
        torch.set_num_threads(threads)
    for result in results[1:]:
        for a, b in zip(results[0], result):
            assert torch.equal(a, b)


@pytest.mark.parametrize('device', DEVICES)
def test_tile_normalize_runs_the_compiled_op_with_the_grouped_results(
        device, monkeypatch):
    compiled_ops(device)
    assert backend(device) == 'extension'
    src, targets, scale, shift = mixed_batch(torch.float32, device)
    inputs = (src.requires_grad_(), scale.requires_grad_(), shift.requires_grad_())
    weights = [torch.randn(t, generator=torch.Generator().manual_seed(n)).to(device)
               for n, t in enumerate(targets)]

    def fit_and_grad():
        fitted = tile_normalize(src, targets, scale, shift)
        loss = sum((w * y).sum() for w, y in zip(weights, fitted))
        return fitted, torch.autograd.grad(loss, inputs)

    compiled, compiled_grads = fit_and_grad()
    # Views into one flat buffer, in order.
    assert [tuple(y.shape) for y in compiled] == targets
    storage = compiled[0].untyped_storage().data_ptr()
    assert all(y.untyped_storage().data_ptr() == storage for y in compiled)
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
    assert backend(device) == 'reference'
    grouped, grouped_grads = fit_and_grad()
    for c, g in zip(compiled, grouped):
        assert torch.equal(c, g)
    for c, g in zip(compiled_grads, grouped_grads):
        torch.testing.assert_close(c, g, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('extension', ['1', '0'])
def test_tile_normalize_promotes_mixed_dtypes(extension, monkeypatch):
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', extension)
    src = torch.randn(2, 3, 2, 3, 3, dtype=torch.bfloat16)
    scale = torch.rand(2)
    fitted = tile_normalize(src, [(4, 1, 1, 1), (2, 2, 3, 3)], scale)
    expected = tile_normalize_reference(src.float(), [(4, 1, 1, 1), (2, 2, 3, 3)],
                                        scale)
    for y, e in zip(fitted, expected):
        assert y.dtype == torch.float32 and torch.equal(y, e)
    assert tile_normalize(src[:0], [], scale[:0]) == []


def test_tile_normalize_refuses_bad_inputs():
    src, scale = torch.randn(2, 3, 2, 3, 3), torch.ones(2)
    with pytest.raises(ValueError, match=r'target shape 0, \(1, 1, 1\), must '
                       r'have four positive dimensions; pad'):
        tile_normalize(src, [(1, 1, 1), (2, 2, 2, 2)], scale)
    with pytest.raises(ValueError, match='four positive'):
        tile_normalize(src, [(1, 1, 1, 0), (2, 2, 2, 2)], scale)
    with pytest.raises(ValueError, match='expected 2 target shapes'):
        tile_normalize(src, [(1, 1, 1, 1)], scale)
    with pytest.raises(ValueError, match=r'\[N, s0, s1, s2, s3\]'):
        tile_normalize(src[0], [(1, 1, 1, 1)] * 3, scale)
    with pytest.raises(ValueError, match=r'shift must have shape \[N\] = \[2\]'):
        tile_normalize(src, [(1, 1, 1, 1)] * 2, scale, torch.zeros(3))
    with pytest.raises(ValueError, match=r'scale must have shape \[N\] = \[2\]'):
        tile_normalize(src, [(1, 1, 1, 1)] * 2, torch.ones(2, 1))
    with pytest.raises(ValueError, match='at least 1'):
        tile_normalize(src[:, :0], [(1, 1, 1, 1)] * 2, scale)


def bad_calls():
    """(description, arguments -> arguments, message) of refused calls."""
    def update(**changes):
        return lambda args: {**args, **changes}
    return [
        ('4-D src', lambda a: {**a, 'src': a['src'][0]}, r'src must have shape \[N, s0'),
        ('integer src', lambda a: {**a, 'src': a['src'].long()}, 'float32, float64'),
        ('empty source', lambda a: {**a, 'src': a['src'][:, :, :0]}, 'at least 1'),
        ('scale dtype', lambda a: {**a, 'scale': a['scale'].double()},
         r'scale must have the dtype of src .* scale.to\(src.dtype\)'),
        ('scale shape', lambda a: {**a, 'scale': a['scale'][:1]},
         r'scale must have shape \[N\] = \[2\]'),
        ('shift shape', lambda a: {**a, 'shift': a['scale'][:1]},
         r'shift must have shape \[N\] = \[2\]'),
        ('float shapes', lambda a: {**a, 'shapes': a['shapes'].float()},
         'shapes must be an int64 tensor'),
        ('shapes rows', lambda a: {**a, 'shapes': a['shapes'][:, :3]},
         r'shapes must have shape \[N, 4\] = \[2, 4\]'),
        ('zero target', update(shapes=torch.tensor([[2, 1, 1, 1], [0, 2, 2, 2]])),
         r'shapes\[1\] = \(0, 2, 2, 2\) must be four positive sizes'),
        ('offsets length', lambda a: {**a, 'offsets': a['offsets'][:2]},
         r'offsets must have shape \[N \+ 1\] = \[3\]'),
        ('offsets start', update(offsets=torch.tensor([1, 3, 19])),
         r'offsets\[0\] must be 0'),
        ('offsets sizes', update(offsets=torch.tensor([0, 2, 17])),
         r'offsets\[2\] - offsets\[1\] must be the size of shapes\[1\] \(16\)'),
    ]


@pytest.mark.parametrize('description, change, message', bad_calls(),
                         ids=[call[0] for call in bad_calls()])
def test_compiled_op_refuses_bad_inputs(description, change, message):
    ops = compiled_ops()
    args = {'src': torch.randn(2, 3, 2, 3, 3), 'scale': torch.ones(2),
            'shift': torch.zeros(2),
            'shapes': torch.tensor([[2, 1, 1, 1], [1, 4, 2, 2]]),
            'offsets': torch.tensor([0, 2, 18])}
    args = change(args)
    with pytest.raises(ValueError, match=message):
        ops.tile_normalize(args['src'], args['shapes'], args['offsets'],
                           args['scale'], args['shift'])


def test_compiled_backward_refuses_a_wrong_gradient():
    ops = compiled_ops()
    src, scale = torch.randn(2, 3, 2, 3, 3), torch.ones(2)
    shapes, offsets = torch.tensor([[2, 1, 1, 1], [1, 4, 2, 2]]), torch.tensor([0, 2, 18])
    with pytest.raises(ValueError, match=r'grad_out must have the shape of the '
                       r'flat output \[offsets\[N\]\] = \[18\]'):
        ops.tile_normalize_backward(torch.ones(17), src, shapes, offsets, scale,
                                    [True, True, True])


def test_unflatten_views_refuses_a_wrong_total():
    ops = compiled_ops()
    shapes = torch.tensor([[2, 1, 1, 1], [1, 4, 2, 2]])
    views = ops.unflatten_views(torch.arange(18.), shapes)
    assert [tuple(v.shape) for v in views] == [(2, 1, 1, 1), (1, 4, 2, 2)]
    assert views[1]._base is not None and float(views[1][0, 0, 0, 0]) == 2
    with pytest.raises(ValueError, match='the shapes hold 18 elements, but '
                       'flat has 17'):
        ops.unflatten_views(torch.arange(17.), shapes)


def test_compiled_op_refuses_double_backward():
    ops = compiled_ops()
    src, targets, scale, _ = mixed_batch(torch.float64, 'cpu', num_random=0)
    shapes, offsets = layout(targets)
    src.requires_grad_()
    out = ops.tile_normalize(src, shapes, offsets, scale)
    (grad_src, ) = torch.autograd.grad(out.square().sum(), src,
                                       create_graph=True)
    with pytest.raises(RuntimeError, match='not implemented'):
        grad_src.sum().backward()


@pytest.mark.parametrize('extension', ['0', '1'])
@pytest.mark.parametrize('device', DEVICES)
def test_tile_normalize_writes_into_a_given_buffer(device, extension,
                                                   monkeypatch):
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', extension)
    src, targets, scale, shift = mixed_batch(torch.float32, device)
    expected = tile_normalize(src, targets, scale, shift)
    total = sum(math.prod(t) for t in targets)
    buffer = torch.full((total + 5, ), float('nan'), device=device)
    fitted = tile_normalize(src, targets, scale, shift,
                            out=buffer[5:])
    assert [tuple(y.shape) for y in fitted] == targets
    for y, e in zip(fitted, expected):
        assert torch.equal(y, e)
        assert y.untyped_storage().data_ptr() == buffer.untyped_storage(
        ).data_ptr()
    assert torch.isnan(buffer[:5]).all() and not torch.isnan(buffer[5:]).any()
    for bad in (buffer[4:], buffer[5:].double(), buffer[5:].view(1, -1)):
        with pytest.raises(ValueError, match='out must be a contiguous 1-D'):
            tile_normalize(src, targets, scale, shift, out=bad)


def test_compiled_out_variant_refuses_a_wrong_buffer():
    ops = compiled_ops()
    src, scale = torch.randn(2, 3, 2, 3, 3), torch.ones(2)
    shapes = torch.tensor([[2, 1, 1, 1], [1, 4, 2, 2]])
    offsets = torch.tensor([0, 2, 18])
    out = torch.empty(18)
    assert ops.tile_normalize.out(src, shapes, offsets, scale,
                                  out=out) is out
    torch.testing.assert_close(out, ops.tile_normalize(src, shapes, offsets,
                                                       scale))
    for bad, message in [(torch.empty(17), 'of offsets'),
                         (torch.empty(36)[::2], 'not contiguous'),
                         (torch.empty(18, dtype=torch.float64), 'like src')]:
        with pytest.raises(ValueError, match=message):
            ops.tile_normalize.out(src, shapes, offsets, scale, out=bad)
