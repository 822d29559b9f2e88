import math

import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import HyperRepresentation, load_zoo_weights
from ghnlib.hyperrep.hyper_representation import FILE
from ghnlib.models import get_model
from ghnlib.train import evaluate


def test_fit_lowers_the_reconstruction_loss(hyper, zoo):
    history = hyper.history
    assert len(history['loss']) == 41 and len(history['val_loss']) == 41
    assert history['loss'][-1] < 0.75 * history['loss'][0]
    # It also reconstructs the held-out member better than at the start.
    assert history['val_loss'][-1] < history['val_loss'][0]
    assert history['members'] == 5 and len(history['held_out_members']) == 1
    assert history['checkpoints'] == 10  # epochs 1 and 2 of five members
    states = load_zoo_weights(zoo[0]).states
    assert hyper.reconstruction_loss(states) == pytest.approx(
        sum(history['loss'][-1:]) * 0.8 + history['val_loss'][-1] * 0.2,
        rel=1e-4)


def test_samples_have_the_zoo_shapes_and_finite_values(hyper, digits):
    samples = hyper.sample(4, torch.Generator().manual_seed(0))
    reference = get_model('small_cnn').state_dict()
    assert len(samples) == 4
    for state in samples:
        assert {k: v.shape for k, v in state.items()} == \
            {k: v.shape for k, v in reference.items()}
        assert all(bool(torch.isfinite(v).all()) for v in state.values())
        model = get_model('small_cnn')
        model.load_state_dict(state)
        assert 0 <= evaluate(model, digits[2]).accuracy <= 1
    assert not torch.equal(samples[0]['features.0.weight'],
                           samples[1]['features.0.weight'])
    # Decoded weights live on the zoo's scale, not the standardised one.
    zoo_std = hyper.layer_std[0].item()
    sampled_std = torch.stack([s['features.0.weight'] for s in samples]).std()
    assert 0.2 * zoo_std < sampled_std.item() < 5 * zoo_std


def test_top_fraction_chooses_the_anchors(hyper):
    assert hyper.kde().num_points == math.ceil(0.3 * 10)
    assert hyper.kde(top_fraction=1.0).num_points == 10
    best = hyper.anchor_accuracy.argmax()
    kde = hyper.kde(top_fraction=0.01)
    assert torch.equal(kde.points[0].float(), hyper.anchor_latents[best])


def test_save_load_round_trip_samples_identically(hyper, tmp_path):
    hyper.save(tmp_path)
    loaded = HyperRepresentation.load(tmp_path)
    assert repr(loaded) == repr(hyper)
    assert loaded.history['loss'] == hyper.history['loss']
    first = hyper.sample(3, torch.Generator().manual_seed(7))
    second = loaded.sample(3, torch.Generator().manual_seed(7))
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    other = loaded.sample(1, torch.Generator().manual_seed(8))[0]
    assert not torch.equal(other['classifier.3.weight'],
                           first[0]['classifier.3.weight'])


def test_corrupt_or_foreign_files_are_refused(hyper, tmp_path):
    with pytest.raises(GhnlibError, match='train-hyperrep'):
        HyperRepresentation.load(tmp_path / 'missing')
    hyper.save(tmp_path)
    path = tmp_path / FILE
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(GhnlibError, match='not a readable'):
        HyperRepresentation.load(tmp_path)
    from safetensors.torch import save_file
    save_file({'x': torch.zeros(1)}, str(path), metadata={'format': 'other'})
    with pytest.raises(GhnlibError, match='not a hyper-representation'):
        HyperRepresentation.load(tmp_path)
    # A NaN anywhere is refused, not loaded.
    hyper.save(tmp_path)
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as reader:
        metadata = reader.metadata()
        tensors = {k: reader.get_tensor(k) for k in reader.keys()}
    tensors['anchor_latents'][0, 0] = float('nan')
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(GhnlibError, match='NaN'):
        HyperRepresentation.load(tmp_path)


def test_init_writes_a_sample_and_refuses_other_architectures(hyper):
    model = hyper.init_(get_model('small_cnn'),
                        torch.Generator().manual_seed(3))
    expected = hyper.sample(1, torch.Generator().manual_seed(3))[0]
    for name, param in model.named_parameters():
        assert torch.equal(param.detach(), expected[name]), name
    with pytest.raises(GhnlibError, match=r"'classifier.3.weight' has shape "
                       r'\(5, 20\), the zoo.s has \(10, 20\)'):
        hyper.init_(get_model('small_cnn', num_classes=5))
    with pytest.raises(GhnlibError, match=r"lacks \['features.0.weight'"):
        hyper.init_(get_model('resnet20'))


def test_fit_refuses_bad_options(zoo):
    with pytest.raises(GhnlibError, match='holdout_fraction'):
        HyperRepresentation.fit(zoo[0], epochs=1, holdout_fraction=1.0)
    with pytest.raises(GhnlibError, match='resnet20'):
        HyperRepresentation.fit(zoo[0], 'resnet20', epochs=1)
    with pytest.raises(GhnlibError, match='epochs'):
        HyperRepresentation.fit(zoo[0], epochs=0)


def test_contrastive_and_augmented_fit_runs(zoo):
    hyper = HyperRepresentation.fit(
        zoo[0], epochs=2, batch_size=4, permute=True, noise=0.1,
        contrast_weight=0.5, holdout_fraction=0.0,
        model_options=dict(d_model=16, latent_dim=2, num_heads=2,
                           num_encoder_layers=1, num_decoder_layers=1),
        seed=1)
    history = hyper.history
    assert len(history['contrast']) == 2 and history['val_loss'] == []
    # NT-Xent over batches of four pairs starts near log(7), the value of
    # indistinguishable views, and is positive.
    assert 0 < history['contrast'][0] < 2 * math.log(7)
    assert all(math.isfinite(v) for v in history['loss'])
    assert history['options']['contrast_weight'] == 0.5
