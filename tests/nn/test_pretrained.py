import pytest
import torch

from ghnlib import GraphHyperNetwork
from ghnlib.data import load_digits
from ghnlib.errors import GhnlibError
from ghnlib.models import get_model
from ghnlib.nn.graph_hypernetwork import list_pretrained
from ghnlib.init import initialize
from ghnlib.train import calibrate_batch_norm, evaluate


@pytest.fixture(scope='module')
def digits():
    return (load_digits(image_size=16, channels=3, split='train'),
            load_digits(image_size=16, channels=3, split='test'))


def accuracy_at_init(model, digits):
    train, test = digits
    calibrate_batch_norm(model, train, num_batches=4)
    return evaluate(model, test).accuracy


def test_shipped_checkpoints_are_listed():
    assert list_pretrained() == ['digits', 'digits-noise']
    with pytest.raises(GhnlibError, match="known: \\['digits'"):
        GraphHyperNetwork.pretrained('cifar10')


@pytest.mark.parametrize('name', ['digits', 'digits-noise'])
def test_shipped_ghn_initialises_an_unseen_resnet20(name, digits):
    """ResNet-20 was never a training architecture: the GHN predicts working
    weights for it, far above chance (0.1) and above He initialisation."""
    ghn = GraphHyperNetwork.pretrained(name)
    assert ghn.noise_dim == (8 if name == 'digits-noise' else 0)
    seeds = range(3)
    ghn_accuracy = [accuracy_at_init(ghn.init_(
        get_model('resnet20'), generator=torch.Generator().manual_seed(s),
        input_shape=(1, 3, 16, 16)), digits) for s in seeds]
    he_accuracy = [accuracy_at_init(initialize(
        get_model('resnet20'), 'he', generator=torch.Generator().manual_seed(s)),
        digits) for s in seeds]
    assert min(ghn_accuracy) > 0.7
    assert min(ghn_accuracy) > max(he_accuracy) + 0.3


@pytest.mark.parametrize('name', ['digits', 'digits-noise'])
def test_shipped_ghns_say_what_they_expect(name):
    ghn = GraphHyperNetwork.pretrained(name)
    data = ghn.meta['data']
    assert (data['image_size'], data['channels']) == (16, 3)
    assert ghn.example_input_shape() == (1, 3, 16, 16)
    assert ghn.meta['command'].startswith('ghnlib train-ghn --dataset digits')
    assert 0 < ghn.meta['accuracy']['val_accuracy'] <= 1
    recipe = load_digits(image_size=16, channels=3)
    raw = load_digits()
    assert torch.allclose(ghn.transforms()(raw.images[:4]),
                          torch.stack([recipe[i][0] for i in range(4)]),
                          atol=1e-5)
