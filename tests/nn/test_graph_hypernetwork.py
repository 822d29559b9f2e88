import math
import threading

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call
from torch_geometric.data import Batch

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.graph import to_graph
from ghnlib.models import get_model
from ghnlib.nn import PreparedBatch, SweepSchedule


def small_ghn(**kwargs):
    torch.manual_seed(0)
    return GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                             **kwargs)


def holds_call_state(value):
    if isinstance(value, (torch.Tensor, PreparedBatch, SweepSchedule, Batch)):
        return True
    if isinstance(value, dict):
        return any(holds_call_state(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_call_state(v) for v in value)
    return False


def assert_keeps_nothing(ghn):
    """The GHN holds its parameters, buffers and config, nothing of the
    calls it served."""
    for module in ghn.modules():
        for name, value in vars(module).items():
            if name not in ('_parameters', '_buffers', '_modules'):
                assert not holds_call_state(value), (type(module).__name__,
                                                     name)


def assert_matches(predicted, model):
    params = dict(model.named_parameters())
    assert set(predicted) == set(params)
    for name, value in predicted.items():
        assert value.shape == params[name].shape, name
        assert torch.isfinite(value).all(), name


def test_predicts_every_parameter_of_a_resnet():
    model = get_model('resnet20')
    predicted = small_ghn().predict([model])[0]
    assert_matches(predicted, model)
    # Weights have He's variance: RMS sqrt(beta / fan_in), whatever the
    # (untrained) decoder's scale; beta = 2 before a ReLU.
    for name, beta in [('conv1.weight', 2), ('layer1.0.conv1.weight', 2),
                       ('layer1.0.conv2.weight', 1), ('fc.weight', 1)]:
        value = predicted[name]
        rms = value.detach().pow(2).mean().sqrt()
        assert float(rms) == pytest.approx(math.sqrt(beta / value[0].numel()),
                                           rel=1e-4)
    # Norm weights near 1, biases small.
    assert (predicted['bn1.weight'] - 1).abs().max() <= 0.5
    assert predicted['fc.bias'].abs().max() <= 0.1


def test_batched_prediction_equals_one_by_one():
    ghn = small_ghn()
    models = [get_model('resnet20'), get_model('small_cnn', input_size=32,
                                               in_channels=3),
              get_model('resnet32', shortcut='B')]
    graphs = [ghn.graph_of(m) for m in models]
    together = ghn.predict(graphs)
    for graph, batched in zip(graphs, together):
        alone = ghn.predict([graph])[0]
        assert alone.keys() == batched.keys()
        for name in alone:
            torch.testing.assert_close(batched[name], alone[name],
                                       rtol=1e-5, atol=1e-6)


def test_inference_decoding_equals_the_differentiable_one():
    # Without gradients, weights are written straight by the decoder's
    # product (tile_normalize only for tiled ones) and the sweeps run the
    # compiled op; with gradients everything goes through autograd-aware
    # ops. A small max_shape makes resnet20 need tiling in every dimension
    # of some weights.
    ghn = small_ghn(noise_dim=3, max_shape=(8, 8, 1, 3))
    models = [get_model('resnet20'), get_model('small_cnn', input_size=32,
                                               in_channels=3)]
    graphs = [ghn.graph_of(m) for m in models]
    noise = torch.randn(2, 3)
    differentiable = ghn.predict(graphs, noise)
    with torch.no_grad():
        inference = ghn.predict(graphs, noise)
    for grad_mode, no_grad in zip(differentiable, inference):
        assert grad_mode.keys() == no_grad.keys()
        for name, value in grad_mode.items():
            assert value.requires_grad and not no_grad[name].requires_grad
            assert no_grad[name].shape == value.shape
            torch.testing.assert_close(no_grad[name], value.detach(),
                                       rtol=1e-5, atol=1e-6)


def test_concurrent_inference_predictions_are_independent():
    # One GHN and one prepared batch shared by threads: nothing of a call
    # is kept where another call would find it.
    ghn = small_ghn(noise_dim=2)
    graph = ghn.graph_of(get_model('resnet20'))
    prepared = ghn.prepare([graph])
    noises = [torch.full((2, ), float(n)) for n in range(6)]
    results = [None] * len(noises)

    def predict(n):
        with torch.no_grad():
            for _ in range(3):
                results[n] = ghn.predict(prepared, noises[n])[0]

    threads = [threading.Thread(target=predict, args=(n, ))
               for n in range(len(noises))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with torch.no_grad():
        for noise, result in zip(noises, results):
            expected = ghn.predict([graph], noise)[0]
            for name, value in expected.items():
                # Another call's weights would differ by far more.
                torch.testing.assert_close(result[name], value, rtol=1e-6,
                                           atol=1e-7)


def test_vectors_are_sliced_or_tiled_and_mapped_to_their_range():
    ghn = small_ghn(max_shape=(8, 8, 3, 3))
    with torch.no_grad():
        predicted = ghn.predict([get_model('resnet20')])[0]
    wide = predicted['layer3.0.bn1.weight']  # 64 channels from 8 values
    assert wide.shape == (64, )
    torch.testing.assert_close(wide, wide[:8].repeat(8), rtol=0, atol=0)
    assert ((wide - 1).abs() <= 0.5).all() and wide.std() > 0
    bias = predicted['layer3.0.bn1.bias']
    assert (bias.abs() <= 0.1).all()
    # Norm weights and biases of one layer come from the two slots of the
    # same decoded pair, so they differ.
    assert not torch.allclose((bias / 0.1)[:8], ((wide - 1) / 0.5)[:8])


def test_noise_controls_the_sample():
    ghn = small_ghn(noise_dim=8)
    graph = ghn.graph_of(get_model('resnet20'))
    xi = torch.randn(8)
    a = ghn.predict([graph], noise=xi)[0]
    b = ghn.predict([graph], noise=xi.clone())[0]
    c = ghn.predict([graph], noise=torch.randn(8))[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.allclose(a[k], c[k]) for k in a)
    g1 = ghn.predict([graph], generator=torch.Generator().manual_seed(3))[0]
    g2 = ghn.predict([graph], generator=torch.Generator().manual_seed(3))[0]
    assert all(torch.equal(g1[k], g2[k]) for k in g1)
    # One draw per architecture by default: two copies of a graph in one
    # batch get different weights; the same noise rows make them equal.
    twice = ghn.predict([graph, graph], generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(twice[0]['conv1.weight'], twice[1]['conv1.weight'])
    same = ghn.predict([graph, graph], noise=xi.expand(2, 8))
    assert torch.equal(same[0]['conv1.weight'], same[1]['conv1.weight'])
    per_node = ghn.predict([graph], per_node_noise=True)[0]
    assert per_node.keys() == a.keys()
    with pytest.raises(GhnlibError, match='noise must have shape'):
        ghn.predict([graph], noise=torch.randn(3, 5))


def test_deterministic_ghn():
    ghn = small_ghn()
    graph = ghn.graph_of(get_model('resnet20'))
    a, b = ghn.predict([graph])[0], ghn.predict([graph])[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(GhnlibError, match='noise_dim=0'):
        ghn.predict([graph], noise=torch.randn(4))


def test_gradients_reach_every_ghn_parameter():
    ghn = small_ghn(noise_dim=4)
    model = get_model('resnet20')
    predicted = ghn.predict([model])[0]
    buffers = dict(model.named_buffers())
    x = torch.randn(4, 3, 32, 32)
    y = torch.randint(0, 10, (4, ))
    logits = functional_call(model, {**predicted, **buffers}, (x, ))
    nn.functional.cross_entropy(logits, y).backward()
    for name, param in ghn.named_parameters():
        if name.startswith('decoder.class_basis') or 'embedding' in name:
            continue  # checked below: only rows for ops/sizes present
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    assert ghn.decoder.class_basis.weight.grad.abs().sum() > 0
    assert ghn.encoder.op_embedding.weight.grad.abs().sum() > 0


def test_init_writes_weights_and_resets_statistics():
    ghn = small_ghn()
    model = get_model('resnet20')
    model.bn1.running_mean.fill_(3.0)
    returned = ghn(model)
    assert returned is model
    predicted = ghn.predict([model])[0]
    for name, param in model.named_parameters():
        # init_ decodes without an autograd graph, with the scale folded
        # into the decoder's product: equal up to rounding.
        torch.testing.assert_close(param, predicted[name].detach(),
                                   rtol=1e-5, atol=1e-6)
    assert torch.equal(model.bn1.running_mean, torch.zeros(16))
    out = model.eval()(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out).all()


def test_init_decodes_into_the_parameters_in_place():
    # max_shape (8, 8, 3, 3): most ResNet-20 weights are tiled.
    ghn = small_ghn(noise_dim=2, max_shape=(8, 8, 3, 3))
    model = get_model('resnet20')
    addresses = {name: p.data_ptr() for name, p in model.named_parameters()}
    noise = torch.randn(2)
    ghn.init_(model, noise)
    expected = ghn.predict([model], noise)[0]
    for name, param in model.named_parameters():
        assert param.data_ptr() == addresses[name]
        torch.testing.assert_close(param, expected[name].detach(), rtol=1e-5,
                                   atol=1e-6)
    assert_keeps_nothing(ghn)


def test_init_of_parameters_it_cannot_write_into_directly():
    ghn = small_ghn(noise_dim=2, max_shape=(8, 8, 3, 3))
    model = get_model('resnet20').double()
    # A non-contiguous parameter as well as another dtype than the GHN's.
    weight = model.fc.weight
    model.fc.weight = nn.Parameter(weight.detach().t().contiguous().t())
    assert not model.fc.weight.is_contiguous()
    noise = torch.randn(2)
    ghn.init_(model, noise)
    expected = ghn.predict([model], noise)[0]
    for name, param in model.named_parameters():
        assert param.dtype == torch.float64
        torch.testing.assert_close(param.float(), expected[name].detach(),
                                   rtol=1e-5, atol=1e-6)


def test_init_refuses_a_foreign_graph_before_writing_anything():
    ghn = small_ghn()
    graph = ghn.graph_of(get_model('resnet20'))
    model = get_model('resnet20', num_classes=7)
    before = {name: p.clone() for name, p in model.named_parameters()}
    with pytest.raises(GhnlibError, match="'fc.weight' has shape"):
        ghn.init_(model, graph=graph)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name])
    with pytest.raises(GhnlibError, match='the model lacks'):
        ghn.init_(get_model('small_cnn'), graph=graph)


def test_save_and_load(tmp_path):
    ghn = small_ghn(noise_dim=2, max_shape=(32, 32, 5, 5))
    path = tmp_path / 'ghn.safetensors'
    ghn.save(path)
    loaded = GraphHyperNetwork.load(path)
    assert loaded.config == ghn.config
    graph = ghn.graph_of(get_model('resnet20'))
    xi = torch.randn(2)
    a, b = ghn.predict([graph], noise=xi)[0], loaded.predict([graph], noise=xi)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_checkpoints_are_refused(tmp_path):
    from safetensors.torch import save_file

    ghn = small_ghn()
    path = tmp_path / 'ghn.safetensors'
    ghn.save(path)
    data = path.read_bytes()
    truncated = tmp_path / 'truncated.safetensors'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(GhnlibError, match='not a readable'):
        GraphHyperNetwork.load(truncated)
    junk = tmp_path / 'junk.safetensors'
    junk.write_bytes(b'\x13\x00' * 100)
    with pytest.raises(GhnlibError, match='not a readable'):
        GraphHyperNetwork.load(junk)
    foreign = tmp_path / 'foreign.safetensors'
    save_file({'w': torch.zeros(2)}, str(foreign))
    with pytest.raises(GhnlibError, match='not a GraphHyperNetwork'):
        GraphHyperNetwork.load(foreign)
    mismatched = tmp_path / 'mismatched.safetensors'
    state = {k: v.contiguous() for k, v in ghn.state_dict().items()}
    state['decoder.kernel.weight'] = torch.zeros(3, 3)
    save_file(state, str(mismatched), metadata={
        'format': 'ghnlib.GraphHyperNetwork', 'format_version': '1',
        'vocabulary_version': '1', 'config': __import__('json').dumps(ghn.config)})
    with pytest.raises(GhnlibError, match="'decoder.kernel.weight' has shape"):
        GraphHyperNetwork.load(mismatched)
    assert not (tmp_path / 'ghn.safetensors.tmp').exists()


def test_foreign_graph_versions_are_refused():
    ghn = small_ghn()
    graph = to_graph(get_model('resnet20'))
    graph.vocabulary_version = 0
    with pytest.raises(GhnlibError, match='vocabulary version 0'):
        ghn.predict([graph])


def test_repr():
    assert repr(small_ghn(noise_dim=8)) == (
        'GraphHyperNetwork(hidden=16, max_shape=(64, 64, 3, 3), noise_dim=8, '
        'num_classes=10)')




def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for name in x:
            assert torch.equal(x[name], y[name]), name


def test_a_kept_prepared_batch_predicts_as_a_fresh_one():
    ghn = small_ghn(noise_dim=2, max_shape=(8, 8, 1, 3))
    models = [get_model('resnet20'),
              get_model('small_cnn', input_size=32, in_channels=3)]
    graphs = [ghn.graph_of(m) for m in models]
    prepared = ghn.prepare(graphs + graphs[:1])
    xi = torch.randn(3, 2)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            fresh = ghn.predict(graphs + graphs[:1], xi)
            first = ghn.predict(prepared, xi)
            again = ghn.predict(prepared, xi)
            from_modules = ghn.predict(models + models[:1], xi)
        assert all(v.requires_grad == grad for p in first for v in p.values())
        fresh, first, again, from_modules = (
            [{k: v.detach() for k, v in p.items()} for p in ps]
            for ps in (fresh, first, again, from_modules))
        assert_same(first, fresh)
        assert_same(again, fresh)
        assert_same(from_modules, fresh)
    # The same generator seed draws the same noise for a prepared batch.
    with torch.no_grad():
        assert_same(ghn.predict(prepared,
                                generator=torch.Generator().manual_seed(4)),
                    ghn.predict(graphs + graphs[:1],
                                generator=torch.Generator().manual_seed(4)))


def test_prepare_accepts_one_model_and_modules():
    ghn = small_ghn()
    model = get_model('resnet20')
    prepared = ghn.prepare(model)
    assert isinstance(prepared, PreparedBatch) and prepared.num_graphs == 1
    assert sorted(prepared.parameter_names()[0]) == sorted(
        name for name, _ in model.named_parameters())
    with torch.no_grad():
        assert_same(ghn.predict(prepared), ghn.predict(model))
    with pytest.raises(GhnlibError, match='at least one model'):
        ghn.prepare([])


def test_out_is_written_and_the_results_are_views_of_it():
    ghn = small_ghn(noise_dim=2, max_shape=(8, 8, 1, 3))
    graphs = [ghn.graph_of(get_model('resnet20')),
              ghn.graph_of(get_model('small_cnn', input_size=32,
                                     in_channels=3))]
    prepared = ghn.prepare(graphs)
    xi = torch.randn(2, 2)
    out = torch.full((prepared.num_elements, ), float('nan'))
    with torch.no_grad():
        expected = ghn.predict(prepared, xi)
        written = ghn.predict(prepared, xi, out=out)
        # Models instead of a prepared batch take an out too.
        assert_same(ghn.predict(graphs, xi, out=prepared.empty_output()),
                    expected)
    assert_same(written, expected)
    assert not out.isnan().any()  # every element belongs to a result
    start = out.data_ptr()
    end = start + out.numel() * out.element_size()
    covered = 0
    for prediction in written:
        for value in prediction.values():
            assert value.untyped_storage().data_ptr() == \
                out.untyped_storage().data_ptr()
            assert start <= value.data_ptr() < end
            covered += value.numel()
    assert covered == out.numel()
    out.zero_()
    assert all(bool((v == 0).all()) for p in written for v in p.values())
    # Reused: the next call overwrites the same memory.
    with torch.no_grad():
        other = ghn.predict(prepared, -xi, out=out)
    assert other[0]['conv1.weight'].data_ptr() == \
        written[0]['conv1.weight'].data_ptr()
    assert not torch.equal(other[0]['conv1.weight'],
                           expected[0]['conv1.weight'])


def test_a_wrong_out_is_refused_before_any_work(monkeypatch):
    ghn = small_ghn()
    model = get_model('resnet20')
    prepared = ghn.prepare(model)
    n = prepared.num_elements
    calls = []
    monkeypatch.setattr(ghn, 'graph_of', lambda *a: calls.append('graph_of'))
    monkeypatch.setattr(ghn, 'node_states',
                        lambda *a: calls.append('node_states'))
    cases = [
        (torch.empty(n, dtype=torch.float64), 'torch.float64 on cpu'),
        (torch.empty(n, device='meta'), 'on meta'),
        (torch.empty(1, n), r'one-dimensional tensor, got shape \(1, '),
        (torch.empty(2 * n)[::2], 'not contiguous'),
        (torch.empty(n + 1), f'has {n + 1} elements, the predictions of '
                             f'these architectures {n}'),
        ([0.0] * n, 'out must be a tensor'),
    ]
    with torch.no_grad():
        for out, message in cases:
            for models in (prepared, [model]):
                if 'elements' in message and models is not prepared:
                    continue  # its size is known once the batch is
                with pytest.raises(GhnlibError, match=message):
                    ghn.predict(models, out=out)
    # With gradients the results cannot be written into a given tensor.
    with pytest.raises(GhnlibError, match='torch.no_grad'):
        ghn.predict(prepared, out=torch.empty(n))
    assert calls == []


def test_a_prepared_batch_of_another_ghn_is_refused():
    prepared = small_ghn(num_classes=7).prepare(get_model('resnet20'))
    ghn = small_ghn()
    with pytest.raises(GhnlibError, match='prepared for num_classes=7'):
        ghn.predict(prepared)
    prepared = small_ghn(max_shape=(8, 8, 3, 3)).prepare(get_model('resnet20'))
    with pytest.raises(GhnlibError, match=r'max_shape=\(8, 8, 3, 3\)'):
        ghn.init_(get_model('resnet20'), graph=prepared)


def test_init_from_a_prepared_model():
    ghn = small_ghn(noise_dim=2)
    model, twin = get_model('resnet20'), get_model('resnet20')
    prepared = ghn.prepare(model)
    noise = torch.randn(2)
    ghn.init_(model, noise, graph=prepared)
    ghn.init_(twin, noise, graph=ghn.graph_of(twin))
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(GhnlibError, match='holds 2 architectures'):
        ghn.init_(model, graph=ghn.prepare([model, model]))


def test_nothing_is_stored_on_the_graphs_or_kept_by_the_ghn():
    ghn = small_ghn(noise_dim=2)
    model = get_model('resnet20')
    graph = ghn.graph_of(model)
    attributes = dict(vars(graph))
    keys = sorted(graph.keys())
    prepared = ghn.prepare([graph, graph])
    with torch.no_grad():
        ghn.predict([graph])
        ghn.predict(prepared)
    ghn.predict([graph])
    ghn.init_(model, graph=graph)
    assert vars(graph).keys() == attributes.keys()
    assert all(vars(graph)[k] is v for k, v in attributes.items())
    assert sorted(graph.keys()) == keys
    assert_keeps_nothing(ghn)


def test_a_copy_of_the_ghn_predicts_the_same():
    import copy
    import pickle

    ghn = small_ghn(noise_dim=2)
    graph = ghn.graph_of(get_model('resnet20'))
    xi = torch.randn(2)
    with torch.no_grad():
        expected = ghn.predict([graph], xi)
        for clone in (copy.deepcopy(ghn), pickle.loads(pickle.dumps(ghn))):
            assert_same(clone.predict([graph], xi), expected)


def test_meta_travels_with_the_file_and_gives_the_transform(tmp_path):
    import warnings

    from ghnlib.data import ImageTransform
    from ghnlib.models import get_model
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2)
    with pytest.raises(GhnlibError, match='no data recipe'):
        ghn.transforms()
    recipe = {'dataset': 'digits', 'image_size': 16, 'channels': 3,
              'mean': [0.3] * 3, 'std': [0.3] * 3}
    ghn.meta = {'data': recipe, 'command': 'ghnlib train-ghn --out x'}
    ghn.save(tmp_path / 'ghn.safetensors')
    loaded = GraphHyperNetwork.load(tmp_path / 'ghn.safetensors')
    assert loaded.meta == ghn.meta
    transform = loaded.transforms()
    assert isinstance(transform, ImageTransform)
    assert transform.to_dict() == {k: v for k, v in recipe.items()
                                   if k != 'dataset'}
    assert loaded.example_input_shape() == (1, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        loaded.init_(get_model('resnet20'))  # the recipe's shape: no warning
    with pytest.warns(UserWarning, match=r'digits at \(3, 16, 16\).*'
                      r'\(1, 3, 32, 32\).*transforms\(\)'):
        loaded.init_(get_model('resnet20'), input_shape=(1, 3, 32, 32))
