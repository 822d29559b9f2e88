import pytest
import torch
import torch.fx

from ghnlib.archspace import (ArchSpace, RandomNet, build, count_parameters)
from ghnlib.errors import GhnlibError
from ghnlib.graph import to_graph
from graph_checks import assert_valid_graph


def structure(model):
    shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    return repr(model), shapes


@pytest.mark.parametrize('size, in_channels, num_classes',
                         [(8, 1, 3), (16, 3, 10), (32, 3, 100),
                          ((12, 20), 2, 5)])
@pytest.mark.parametrize('family', ['cnn', 'hybrid', 'transformer'])
def test_samples_classify_a_random_batch(size, in_channels, num_classes,
                                         family):
    space = ArchSpace(in_channels=in_channels, num_classes=num_classes,
                      input_size=size, width=(8, 32), max_params=100_000,
                      families=(family, ))
    height, width = space.input_size
    batch = torch.randn(2, in_channels, height, width,
                        generator=torch.Generator().manual_seed(0))
    for model in space.sample(3, seed=100):
        out = model(batch)
        assert out.shape == (2, num_classes), model.name
        assert torch.isfinite(out).all(), model.name


def test_build_gives_the_same_structure_every_time():
    for recipe in ArchSpace().sample_recipes(10, seed=7):
        first, second = build(recipe), build(recipe.to_json())
        assert structure(first) == structure(second)
        assert structure(build(recipe.to_dict())) == structure(first)
        assert first.name == recipe.name and first.recipe == recipe


def test_count_parameters_counts_the_built_model():
    for recipe in ArchSpace().sample_recipes(5, seed=3):
        model = build(recipe)
        assert count_parameters(recipe) == sum(p.numel()
                                               for p in model.parameters())


def test_build_refuses_other_types():
    with pytest.raises(GhnlibError, match='expected an ArchRecipe'):
        build(42)


def test_samples_convert_with_every_parameter_placed():
    spaces = [ArchSpace(input_size=32), ArchSpace(input_size=8, in_channels=1,
                                                  num_classes=4)]
    for space in spaces:
        for model in space.sample(15, seed=500):
            shape = (1, space.in_channels, *space.input_size)
            graph = to_graph(model, input_shape=shape, strict=False)
            assert graph.unsupported == [], model.name
            assert graph.opaque == [] and graph.shape_failures == []
            assert_valid_graph(graph, model)
            counts = graph.op_counts()
            assert 'generic' not in counts and 'module' not in counts


def test_samples_trace_with_plain_torch_fx():
    space = ArchSpace(input_size=16, width=(8, 32), max_params=100_000)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for model in space.sample(6, seed=900):
        traced = torch.fx.symbolic_trace(model)
        model.eval()
        traced.eval()
        assert torch.allclose(traced(x), model(x), atol=1e-6)


def test_random_net_is_a_plain_module():
    model = ArchSpace().sample(1)[0]
    assert isinstance(model, RandomNet)
    assert f"name='{model.name}'" in repr(model)


def test_every_sample_takes_the_standard_initialisations():
    from ghnlib.archspace import ArchSpace
    from ghnlib.init import initialize
    recipes = ArchSpace(input_size=8, width=(8, 16), depth=(1, 3),
                        max_params=50_000).sample_recipes(12, seed=0)
    assert any(r.tokens is not None for r in recipes)
    for recipe in recipes:
        for spec in ('he', 'xavier', 'default'):
            model = initialize(build(recipe), spec,
                               generator=torch.Generator().manual_seed(0))
            assert all(torch.isfinite(p).all() for p in model.parameters())
