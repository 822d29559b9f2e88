import math
import threading

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.graph import to_graph
from ghnlib.models import get_model
from ghnlib.nn.graph_hypernetwork import plan_parameters


def small_ghn(**kwargs):
    torch.manual_seed(0)
    return GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                             **kwargs)


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
        rms = value.pow(2).mean().sqrt()
        assert float(rms) == pytest.approx(math.sqrt(beta / value[0].numel()),
                                           rel=1e-4)
    # Norm weights near 1, biases small.
    assert (predicted['bn1.weight'] - 1).abs().max() <= 0.5
    assert predicted['fc.bias'].abs().max() <= 0.1


def test_plan_gain_and_classifier():
    graph = to_graph(get_model('resnet20'))
    plan = {task.name: task for task in plan_parameters(graph, num_classes=10)}
    conv = plan['conv1.weight']  # conv → bn → relu: beta = 2
    assert conv.kind == 'weight' and not conv.classifier
    assert conv.scale == pytest.approx(math.sqrt(2 / (3 * 3 * 3)))
    fc = plan['fc.weight']  # classifier, followed by nothing ReLU-like
    assert fc.classifier
    assert fc.scale == pytest.approx(math.sqrt(1 / 64))
    assert plan['bn1.weight'].kind == 'norm_weight'
    assert plan['bn1.bias'].kind == 'norm_bias'
    assert plan['fc.bias'].kind == 'bias'
    # The second conv of a block feeds the residual sum, then a ReLU.
    assert plan['layer1.0.conv2.weight'].scale == pytest.approx(
        math.sqrt(1 / (16 * 9)))


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


def test_inference_reuses_its_output_memory_only_once_released():
    ghn = small_ghn(noise_dim=2)
    graph = ghn.graph_of(get_model('resnet20'))

    def address(prediction):
        return prediction['conv1.weight'].untyped_storage().data_ptr()

    with torch.no_grad():
        first = ghn.predict([graph], torch.ones(2))[0]
        kept = {name: value.clone() for name, value in first.items()}
        held = ghn.predict([graph], -torch.ones(2))[0]
        # The first results are still referenced: new memory, old values
        # intact.
        assert address(held) != address(first)
        for name, value in first.items():
            assert torch.equal(value, kept[name])
        old_address = address(held)
        del first, held
        again = ghn.predict([graph], torch.ones(2))[0]
        # Everything released: the same memory serves the next call, with
        # the right values.
        assert address(again) == old_address
        for name, value in again.items():
            assert torch.equal(value, kept[name])
        del again
        ghn.empty_cache()
        assert ghn._output_pool is None


def test_concurrent_inference_predictions_do_not_share_memory():
    ghn = small_ghn(noise_dim=2)
    graph = ghn.graph_of(get_model('resnet20'))
    noises = [torch.full((2, ), float(n)) for n in range(6)]
    results = [None] * len(noises)

    def predict(n):
        with torch.no_grad():
            for _ in range(3):
                results[n] = ghn.predict([graph], noises[n])[0]

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
    # Nothing of the model's size is kept by the GHN.
    assert ghn._output_pool is None


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


def test_repeated_batches_reuse_their_schedule():
    import copy

    ghn = small_ghn(noise_dim=2)
    graphs = [ghn.graph_of(get_model('resnet20')), ghn.graph_of(get_model('resnet32'))]
    xi = torch.randn(2)
    first = ghn.predict(graphs, noise=xi)
    batch, schedule = ghn.batch_of(graphs)
    again = ghn.predict(graphs, noise=xi)
    assert ghn.batch_of(graphs)[1] is schedule
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, again) for k in a)
    # Another list of graphs gets its own batch and schedule.
    other = ghn.predict(graphs[::-1], noise=xi)
    assert ghn.batch_of(graphs[::-1])[1] is not schedule
    assert all(torch.equal(first[1][k], other[0][k]) for k in first[1])
    clone = copy.deepcopy(ghn)
    assert clone._batch_cache is None
    assert torch.equal(clone.predict(graphs, noise=xi)[0]['conv1.weight'],
                       first[0]['conv1.weight'])
