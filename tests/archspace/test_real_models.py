import pytest
import torch
import torch.nn as nn

from ghnlib.archspace import REAL_MODELS, real_models
from ghnlib.errors import GhnlibError
from ghnlib.graph import to_graph
from graph_checks import assert_valid_graph


@pytest.fixture(scope='module')
def models_by_shape(torchvision):
    built = {}

    def get(shape, num_classes):
        key = (shape, num_classes)
        if key not in built:
            built[key] = real_models(shape, num_classes)
        return built[key]
    return get


@pytest.mark.slow
@pytest.mark.parametrize('shape, num_classes', [((3, 32, 32), 10),
                                                ((1, 16, 16), 7)])
def test_real_models_classify_small_inputs(models_by_shape, shape,
                                           num_classes):
    models = models_by_shape(shape, num_classes)
    assert [m.name for m in models] == list(REAL_MODELS)
    batch = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    for name, model in models:
        out = model(batch)
        assert out.shape == (2, num_classes), name
        assert torch.isfinite(out).all(), name
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == shape[0] and first.stride == (1, 1), name


def test_vgg_keeps_as_many_poolings_as_the_input_allows(torchvision):
    def vgg(size):
        [(name, model)] = real_models((3, size, size), 5, names=['vgg11_bn'])
        assert name == 'vgg11_bn'
        pools = sum(isinstance(m, nn.MaxPool2d) for m in model.features)
        return model, pools

    model, pools = vgg(16)
    assert pools == 4
    assert model.classifier[0].in_features == 512
    assert model.classifier[-1].out_features == 5
    assert sum(p.numel() for p in model.parameters()) < 10_000_000
    assert vgg(32)[1] == 5 and vgg(8)[1] == 3


@pytest.mark.slow
def test_real_models_convert_with_every_parameter_placed(models_by_shape):
    for name, model in models_by_shape((3, 32, 32), 10):
        graph = to_graph(model, input_shape=(1, 3, 32, 32))
        assert graph.unsupported == [], name
        assert_valid_graph(graph, model)


@pytest.mark.parametrize('shape', [(32, 32), (3, 2, 2), (3, 32, 'a'), 5])
def test_bad_input_shapes_are_refused(shape):
    with pytest.raises(GhnlibError, match='input_shape must be'):
        real_models(shape)


def test_bad_class_counts_are_refused():
    with pytest.raises(GhnlibError, match='num_classes must be'):
        real_models((3, 32, 32), 0)


def test_a_batch_dimension_is_ignored(torchvision):
    models = real_models((4, 3, 16, 16), 3,
                         names=('shufflenet_v2_x0_5', 'mnasnet0_5'))
    assert [name for name, _ in models] == ['shufflenet_v2_x0_5',
                                            'mnasnet0_5']
    for _, model in models:
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_unknown_names_are_refused():
    with pytest.raises(GhnlibError, match='names must be'):
        real_models((3, 32, 32), names=['resnet50'])
    with pytest.raises(GhnlibError, match='names must be'):
        real_models((3, 32, 32), names='resnet18')
