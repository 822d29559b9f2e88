import pytest
import torch

from ghnlib.graph import to_graph
from ghnlib.models import get_model


@pytest.fixture(scope='session')
def resnet20_graph():
    return to_graph(get_model('resnet20'))


@pytest.fixture(scope='session')
def small_cnn_graph():
    return to_graph(get_model('small_cnn'))


@pytest.fixture(scope='session')
def mobilenet_graph(torchvision):
    with torch.device('meta'):
        model = torchvision.models.mobilenet_v3_small()
    return to_graph(model, input_shape=(1, 3, 64, 64))
