import pytest
import torch
import torch.nn as nn

from ghnlib.models import SmallCNN, get_model, small_cnn


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_default_parameter_count():
    model = small_cnn()
    assert num_params(model) == 2464
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 6, 4]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (2, 2)]
    assert [(m.in_features, m.out_features) for m in linear] == [(36, 20),
                                                                  (20, 10)]


@pytest.mark.parametrize('in_channels, input_size, features', [(1, 28, 36),
                                                               (3, 32, 64),
                                                               (1, 20, 4)])
def test_output_shape(in_channels, input_size, features):
    model = small_cnn(in_channels=in_channels, input_size=input_size,
                      num_classes=7)
    assert model.classifier[1].in_features == features
    out = model(torch.randn(2, in_channels, input_size, input_size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize('input_size', [8, 19])
def test_too_small_input_raises(input_size):
    with pytest.raises(ValueError, match=rf'input_size={input_size} is too '
                       r'small.*at least 20'):
        small_cnn(input_size=input_size)


@pytest.mark.parametrize('name, cls', [('tanh', nn.Tanh), ('relu', nn.ReLU),
                                       ('gelu', nn.GELU)])
def test_activation(name, cls):
    model = get_model('small_cnn', activation=name)
    assert isinstance(model, SmallCNN)
    activations = [type(m) for m in model.modules()
                   if isinstance(m, (nn.Tanh, nn.ReLU, nn.GELU))]
    assert activations == [cls] * 4


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="'tanh', 'relu', 'gelu'.*'sigmoid'"):
        small_cnn(activation='sigmoid')
