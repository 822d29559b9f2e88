import pytest
import torch
import torch.nn as nn

from ghnlib.errors import UnknownModelError
from ghnlib.models import (get_model, list_models, register_model, registry,
                           resnet20)
from ghnlib.models.resnet_cifar import CifarResNet

RESNETS = ['resnet110', 'resnet20', 'resnet32', 'resnet44', 'resnet56']


@pytest.fixture
def scratch_registry():
    before = set(registry.MODELS.names())
    yield
    for name in set(registry.MODELS.names()) - before:
        registry.MODELS.unregister(name)


def test_list_models_is_sorted_and_complete():
    assert list_models() == RESNETS + ['small_cnn']


def test_list_models_pattern():
    assert list_models('resnet*') == RESNETS
    assert list_models('resnet1?0') == ['resnet110']
    assert list_models('*cnn') == ['small_cnn']
    assert list_models('vgg*') == []
    assert list_models('ResNet*') == []


@pytest.mark.parametrize('name, num_classes', [('resnet20', 100),
                                               ('small_cnn', 3)])
def test_get_model_passes_kwargs(name, num_classes):
    def classifier(model):
        return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]

    assert classifier(get_model(name)).out_features == 10
    model = get_model(name, num_classes=num_classes)
    assert classifier(model).out_features == num_classes


def test_get_model_options_are_keyword_only_and_checked():
    with pytest.raises(TypeError):
        get_model('resnet20', depth=20)
    with pytest.raises(TypeError):
        resnet20(100)


def test_duplicate_registration_raises(scratch_registry):
    @register_model('tiny')
    def build():
        return nn.Linear(2, 2)

    with pytest.raises(ValueError, match="'tiny' is already registered"):
        register_model('tiny')(lambda: nn.Linear(3, 3))
    with pytest.raises(ValueError, match="'resnet20' is already registered"):
        @register_model()
        def resnet20():
            return nn.Linear(3, 3)

    assert get_model('tiny').in_features == 2
    assert isinstance(get_model('resnet20'), CifarResNet)


def test_register_by_function_name_and_bare(scratch_registry):
    @register_model()
    def net_a():
        return nn.Linear(1, 1)

    @register_model
    def net_b():
        return nn.Linear(2, 1)

    assert list_models('net_*') == ['net_a', 'net_b']
    assert get_model('net_b').in_features == 2


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError) as info:
        get_model('resnet2')
    message = str(info.value)
    assert "'resnet2'" in message
    assert "Did you mean" in message and "'resnet20'" in message
    assert 'ghnlib.models.list_models()' in message
    assert isinstance(info.value, KeyError)


def test_unknown_name_without_close_match():
    with pytest.raises(UnknownModelError) as info:
        get_model('xyzzy')
    message = str(info.value)
    assert "'xyzzy'" in message
    assert 'Did you mean' not in message
    assert 'list_models()' in message


def test_get_model_for_input_builds_for_the_channels_and_size():
    from ghnlib.models import get_model_for_input

    cnn = get_model_for_input('small_cnn', (2, 3, 32, 32), num_classes=5)
    assert cnn.features[0].in_channels == 3
    assert cnn(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    resnet = get_model_for_input('resnet20', (1, 16, 16))
    assert resnet(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    # Explicit options win; non-square inputs leave input_size alone.
    assert get_model_for_input('small_cnn', (1, 3, 32, 32),
                               in_channels=2).features[0].in_channels == 2
    assert get_model_for_input('small_cnn', (1, 1, 28, 40))(
        torch.randn(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        get_model_for_input('small_cnn', (28, 28))
    with pytest.raises(UnknownModelError, match='small_cnn'):
        get_model_for_input('small_cn', (1, 28, 28))
