"""Loading ghnlib._C, choosing the backend, and the GHN on both backends."""
import sys
import warnings

import pytest
import torch

import ghnlib.ops.extension as extension
from ghnlib import GraphHyperNetwork
from ghnlib.models import get_model
from ghnlib.ops import backend, tile_normalize, tile_normalize_reference


def test_extension_is_built_here():
    # The install (`pip install --no-build-isolation -e .`, `make install`)
    # builds ghnlib._C; CI must exercise it, not fall back silently.
    assert extension.load_extension() is not None, (
        'ghnlib._C is not built or does not load; build it with `pip install '
        '--no-build-isolation -e .`')
    assert backend() == 'extension'


def test_backend_follows_the_environment_and_the_device(monkeypatch):
    built = extension.load_extension()
    assert backend('cpu') == 'extension'
    assert backend(torch.device('meta')) == 'reference'
    assert backend('cuda') == ('extension' if built.with_cuda else 'reference')
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
    assert backend() == backend('cpu') == 'reference'
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '0')
    assert backend() == 'extension'


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """Points the loader at a module in tmp_path that is not imported yet."""
    monkeypatch.setattr(extension, '_extension', extension._NOT_LOADED_YET)
    monkeypatch.syspath_prepend(str(tmp_path))

    def use(name, source=None):
        if source is not None:
            (tmp_path / f'{name}.py').write_text(source)
        monkeypatch.setattr(extension, 'EXTENSION_MODULE', name)
        monkeypatch.delitem(sys.modules, name, raising=False)
    return use


def fit_small_batch():
    src, scale = torch.randn(2, 3, 2, 3, 3), torch.rand(2)
    targets = [(5, 1, 1, 1), (2, 4, 5, 3)]
    for y, e in zip(tile_normalize(src, targets, scale),
                    tile_normalize_reference(src, targets, scale)):
        assert torch.equal(y, e)


def test_a_missing_build_is_silent(fresh_loader):
    fresh_loader('ghnlib_test_extension_that_is_not_built')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert backend() == 'reference'
        fit_small_batch()


@pytest.mark.parametrize('source, cause', [
    ("raise OSError('_C.so: undefined symbol: _ZN3c106detail14torchCheckFail')",
     'OSError: _C.so: undefined symbol'),
    # A module the build needs is missing, not the build itself.
    ('import ghnlib_test_missing_dependency',
     "ModuleNotFoundError: No module named 'ghnlib_test_missing_dependency'"),
])
def test_a_broken_build_warns_once_and_falls_back(fresh_loader, source, cause):
    fresh_loader('ghnlib_test_broken_extension', source)
    with pytest.warns(RuntimeWarning) as record:
        assert backend() == 'reference'
    assert len(record) == 1
    message = str(record[0].message)
    assert cause in message
    assert 'pip install --no-build-isolation -e .' in message
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert backend() == 'reference'
        fit_small_batch()


def predictions_and_gradients(ghn, graph, weights=None):
    predicted = ghn.predict([graph])[0]
    if weights is None:
        generator = torch.Generator().manual_seed(0)
        weights = {name: torch.randn(value.shape, generator=generator)
                   for name, value in predicted.items()}
    loss = sum((weights[name] * value).sum() for name, value in predicted.items())
    params = [p for p in ghn.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return predicted, grads, weights


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('max_shape', [(64, 64, 3, 3), (16, 8, 3, 3)])
def test_ghn_predicts_the_same_on_both_backends(max_shape, dtype, monkeypatch):
    # (16, 8, 3, 3) decodes crops smaller than most ResNet-20 layers, so
    # tiling carries those weights and their gradients.
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                            max_shape=max_shape).to(dtype)
    graph = ghn.graph_of(get_model('resnet20'))
    assert backend() == 'extension'
    compiled, compiled_grads, weights = predictions_and_gradients(ghn, graph)
    monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
    reference, reference_grads, _ = predictions_and_gradients(ghn, graph, weights)
    assert compiled.keys() == reference.keys()
    for name in compiled:
        assert compiled[name].dtype == dtype
        assert torch.equal(compiled[name], reference[name]), name
    # The gradients sum the same terms in another order: in float32 both
    # stay about 5e-7 (relative to the largest entry) from a float64 run.
    tolerance = 2e-6 if dtype == torch.float32 else 1e-12
    for c, r in zip(compiled_grads, reference_grads):
        assert (c is None) == (r is None)
        if c is not None:
            torch.testing.assert_close(
                c, r, rtol=0, atol=tolerance * max(1.0, float(r.abs().max())))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_ghn_inference_is_the_same_on_both_backends(dtype, monkeypatch):
    # Without gradients the extension runs the sweeps and fits tiled
    # weights into the output buffer (tile_normalize.out); without it,
    # PyTorch's level sweeps and the grouped fitting do.
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                            max_shape=(16, 8, 3, 3)).to(dtype)
    graphs = [ghn.graph_of(get_model(name)) for name in ('resnet20',
                                                         'resnet32')]
    with torch.no_grad():
        assert ghn.gnn.uses_compiled_sweep(
            torch.zeros(1, 16, dtype=dtype))
        compiled = ghn.predict(graphs)
        monkeypatch.setenv('GHNLIB_DISABLE_EXTENSION', '1')
        assert not ghn.gnn.uses_compiled_sweep(
            torch.zeros(1, 16, dtype=dtype))
        reference = ghn.predict(graphs)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    for c, r in zip(compiled, reference):
        assert c.keys() == r.keys()
        for name in c:
            torch.testing.assert_close(c[name], r[name], rtol=tolerance,
                                       atol=tolerance)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason='needs a CUDA device')
@pytest.mark.parametrize('grad', [False, True])
def test_ghn_on_cuda_predicts_what_it_predicts_on_the_cpu(grad):
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                            max_shape=(16, 8, 3, 3), noise_dim=2)
    graph = ghn.graph_of(get_model('resnet20'))
    noise = torch.randn(2)
    with torch.set_grad_enabled(grad):
        on_cpu = ghn.predict([graph], noise)[0]
        on_cuda = ghn.to('cuda').predict([graph], noise)[0]
    for name, value in on_cpu.items():
        assert on_cuda[name].is_cuda and on_cuda[name].requires_grad == grad
        torch.testing.assert_close(on_cuda[name].cpu(), value, rtol=1e-4,
                                   atol=1e-5)
