import math
import warnings

import pytest
import torch

from ghnlib.data import load_digits
from ghnlib.errors import GhnlibError
from ghnlib.local.initializer import LocalInitializer
from ghnlib.local.weight_dataset import conv_layers
from ghnlib.models import get_model
from ghnlib.init import initialize
from ghnlib.train import SGDRecipe
from ghnlib.zoo import build_zoo

SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
    """Three ResNet-20s trained (briefly) on the real digits."""
    directory = tmp_path_factory.mktemp('zoo')
    train = load_digits(image_size=8, channels=3, split='train')
    val = load_digits(image_size=8, channels=3, split='val')
    build_zoo('resnet20', train, val, directory, seeds=[0, 1, 2],
              recipe=SGDRecipe(lr=0.05, batch_size=64, epochs=1,
                               milestones=(), factors=()),
              max_steps=30, eval_every=10, progress=False)
    return directory


@pytest.fixture(scope='module')
def vae(zoo):
    return LocalInitializer.fit(zoo, 'resnet20', 'vae', epochs=4,
                                max_slices=3000, input_shape=SHAPE)


def test_fit_learns_every_layer(vae):
    names = [layer.name for layer in conv_layers(get_model('resnet20'))]
    assert list(vae.layers) == names and not vae.skipped
    assert set(vae.histories) == set(names)
    trained = 0
    for name, history in vae.histories.items():
        losses = history['loss']
        assert len(losses) == 4
        out_channels, in_channels = vae.layers[name].shape[:2]
        if 3 * out_channels * in_channels >= 1500:  # enough slices to learn
            assert losses[-1] < losses[0], name  # the ELBO improves
            trained += 1
    assert trained == 12


def test_sampled_kernels_fill_every_conv_layer(vae):
    model = get_model('resnet20')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # nothing is kept: no warning
        vae.init_(model, torch.Generator().manual_seed(0), input_shape=SHAPE)
    report = vae.last_report
    assert len(report.sampled) == 19 and report.kept == {}
    state = model.state_dict()
    for name in report.sampled:
        assert state[name].shape == before[name].shape
        assert torch.isfinite(state[name]).all()
        assert not torch.equal(state[name], before[name])
    assert torch.equal(state['fc.weight'], before['fc.weight'])
    # The samples keep the zoo's scale: compare with the zoo's own layer.
    sampler = vae.layers['layer2.0.conv1.weight']
    assert state['layer2.0.conv1.weight'].std().item() == pytest.approx(
        sampler.std, rel=0.5)


def test_he_calibration_gives_he_variance(vae):
    model = vae.init_(get_model('resnet20'), torch.Generator().manual_seed(1),
                      calibrate='he', input_shape=SHAPE)
    for layer in conv_layers(model, SHAPE):
        weight = dict(model.named_parameters())[layer.name]
        he = 2 / math.prod(layer.shape[1:])
        assert weight.pow(2).mean().item() == pytest.approx(he, rel=0.1)
    with pytest.raises(GhnlibError, match='calibrate'):
        vae.init_(get_model('resnet20'), calibrate='xavier')


def test_other_architecture_keeps_unknown_layers_and_says_so(vae):
    model = get_model('resnet32')
    with pytest.warns(UserWarning, match='kept their initialisation'):
        vae.init_(model, torch.Generator().manual_seed(0), input_shape=SHAPE)
    report = vae.last_report
    assert 'layer1.3.conv1.weight' in report.kept
    assert 'resnet20' in report.kept['layer1.3.conv1.weight']
    assert 'layer1.0.conv1.weight' in report.sampled


def test_save_load_round_trip_samples_identically(vae, tmp_path):
    vae.save(tmp_path / 'vae')
    loaded = LocalInitializer.load(tmp_path / 'vae')
    assert loaded.kind == 'vae' and list(loaded.layers) == list(vae.layers)
    a = vae.init_(get_model('resnet20'), torch.Generator().manual_seed(3),
                  input_shape=SHAPE)
    b = loaded.init_(get_model('resnet20'), torch.Generator().manual_seed(3),
                     input_shape=SHAPE)
    c = loaded.init_(get_model('resnet20'), torch.Generator().manual_seed(4),
                     input_shape=SHAPE)
    for layer in conv_layers(a, SHAPE):
        assert torch.equal(a.state_dict()[layer.name], b.state_dict()[layer.name])
    assert not torch.equal(a.state_dict()['conv1.weight'],
                           c.state_dict()['conv1.weight'])
    # Through the initialisation registry, as the trainers use it.
    d = initialize(get_model('resnet20'), f'vae:{tmp_path / "vae"}',
                   generator=torch.Generator().manual_seed(3),
                   input_shape=SHAPE)
    assert torch.equal(d.state_dict()['conv1.weight'],
                       a.state_dict()['conv1.weight'])
    with pytest.raises(GhnlibError, match="use 'vae:"):
        initialize(get_model('resnet20'), f'vqvae:{tmp_path / "vae"}')


def test_corrupt_or_missing_files_are_refused(vae, tmp_path):
    with pytest.raises(GhnlibError, match='train-local'):
        LocalInitializer.load(tmp_path / 'nothing')
    vae.save(tmp_path / 'bad')
    path = tmp_path / 'bad' / 'local_init.safetensors'
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(GhnlibError, match='not a readable local initialiser'):
        LocalInitializer.load(tmp_path / 'bad')


def test_vqvae_with_code_prior(zoo, tmp_path):
    vq = LocalInitializer.fit(zoo, 'resnet20', 'vqvae', epochs=2,
                              max_slices=1500, input_shape=SHAPE)
    sampler = vq.layers['conv1.weight']
    assert sampler.model.prior is not None  # VQVAE*
    vq.save(tmp_path)
    loaded = LocalInitializer.load(tmp_path)
    a = vq.init_(get_model('resnet20'), torch.Generator().manual_seed(5),
                 input_shape=SHAPE)
    b = loaded.init_(get_model('resnet20'), torch.Generator().manual_seed(5),
                     input_shape=SHAPE)
    for layer in conv_layers(a, SHAPE):
        value = a.state_dict()[layer.name]
        assert torch.isfinite(value).all()
        assert torch.equal(value, b.state_dict()[layer.name])
