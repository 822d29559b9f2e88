import pytest
import torch

from ghnlib.archspace import ArchSpace
from ghnlib.errors import GhnlibError
from ghnlib.train.arch_dataset import ArchDataset

SHAPE = (1, 3, 8, 8)


@pytest.fixture(scope='module')
def recipes():
    return ArchSpace(input_size=8, width=(8, 16), depth=(1, 3),
                     max_params=50_000).sample_recipes(6, seed=3)


def test_graphs_place_every_parameter_of_the_rebuilt_models(recipes):
    archs = ArchDataset(recipes, input_shape=SHAPE)
    assert len(archs) == 6
    for index in range(len(archs)):
        model, graph = archs[index]
        placed = sorted(n for names in graph.node_params for n in names)
        assert placed == sorted(n for n, _ in model.named_parameters())
        assert model.training
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_the_cache_round_trips_without_converting_again(recipes, tmp_path,
                                                        monkeypatch):
    first = ArchDataset(recipes, tmp_path, input_shape=SHAPE)
    assert not first.loaded_from_cache
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f'archs-{first.digest()}.pt']

    import ghnlib.train.arch_dataset as module

    def no_conversion(*args, **kwargs):
        raise AssertionError('converted again')

    monkeypatch.setattr(module, 'to_graph', no_conversion)
    second = ArchDataset(recipes, tmp_path, input_shape=SHAPE)
    assert second.loaded_from_cache
    for a, b in zip(first.graphs, second.graphs):
        assert a.op_names == b.op_names and a.node_params == b.node_params
        for key in ('op', 'node_shape', 'edge_index', 'virtual_edge_index',
                    'virtual_edge_dist'):
            assert torch.equal(a[key], b[key]), key


def test_other_inputs_get_another_cache_file(recipes, tmp_path):
    a = ArchDataset(recipes, tmp_path, input_shape=SHAPE)
    b = ArchDataset(recipes[:3], tmp_path, input_shape=SHAPE)
    c = ArchDataset(recipes, tmp_path, input_shape=SHAPE, ve_cutoff=2)
    assert len({a.path, b.path, c.path}) == 3


def test_a_corrupt_or_foreign_cache_is_refused(recipes, tmp_path):
    archs = ArchDataset(recipes[:2], tmp_path, input_shape=SHAPE)
    with open(archs.path, 'wb') as handle:
        handle.write(b'not a cache')
    with pytest.raises(GhnlibError, match='cannot be read.*delete it'):
        ArchDataset(recipes[:2], tmp_path, input_shape=SHAPE)
    torch.save({'format': 'ghnlib.ArchDataset', 'version': 1,
                'names': ['other'], 'graphs': [{}]}, archs.path)
    with pytest.raises(GhnlibError, match='other architectures'):
        ArchDataset(recipes[:2], tmp_path, input_shape=SHAPE)


def test_bad_recipes_are_refused(recipes):
    with pytest.raises(GhnlibError, match='at least one'):
        ArchDataset([], input_shape=SHAPE)
    with pytest.raises(GhnlibError, match='ArchRecipe'):
        ArchDataset(['resnet20'], input_shape=SHAPE)
    with pytest.raises(GhnlibError, match='not distinct'):
        ArchDataset([recipes[0], recipes[0]], input_shape=SHAPE)
