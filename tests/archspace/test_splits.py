import pytest
import torch.nn as nn

from ghnlib.archspace import (SPLITS, TRAIN_SEEDS, ArchSpace,
                              count_parameters, sample_split, split_recipes,
                              split_seed, split_space)
from ghnlib.archspace.splits import SPLIT_SIZE
from ghnlib.errors import GhnlibError
from ghnlib.graph import to_graph
from graph_checks import assert_valid_graph

TRAIN = ArchSpace()


def all_widths(recipe):
    found = [stage.width for stage in recipe.stages]
    return found + ([recipe.tokens.width] if recipe.tokens else [])


@pytest.fixture(scope='module')
def training_recipes():
    return TRAIN.sample_recipes(400, seed=0)


@pytest.mark.parametrize('name', SPLITS)
def test_splits_are_fixed_by_seed(name):
    first = split_recipes(name, 6)
    assert first == split_recipes(name, 6)
    assert first[:3] == split_recipes(name, 3)
    assert all(r.seed >= TRAIN_SEEDS for r in first)


@pytest.mark.parametrize('name', SPLITS)
def test_splits_are_disjoint_from_training(name, training_recipes):
    recipes = split_recipes(name, 40)
    seen = {r.signature() for r in training_recipes}
    assert not seen & {r.signature() for r in recipes}
    assert not {r.seed for r in training_recipes} & {r.seed for r in recipes}
    assert len({r.signature() for r in recipes}) == 40


def test_the_seed_ranges_of_splits_do_not_overlap():
    starts = [split_seed(name, 0) for name in SPLITS]
    assert starts == [TRAIN_SEEDS + k * SPLIT_SIZE for k in range(len(SPLITS))]
    assert split_seed('id', SPLIT_SIZE - 1) == starts[1] - 1
    with pytest.raises(GhnlibError, match='index must be'):
        split_seed('id', SPLIT_SIZE)


def test_excluded_architectures_are_skipped():
    plain = split_recipes('id', 5)
    skipping = split_recipes('id', 5, exclude=plain[1:3])
    assert skipping[0] == plain[0]
    assert skipping[1:3] == plain[3:5]
    assert not {r.signature() for r in plain[1:3]} & {
        r.signature() for r in skipping}


def test_each_split_differs_from_training_as_named():
    top_width, top_depth = TRAIN.width[1], TRAIN.depth[1]
    top_nodes = TRAIN.nodes[1]
    for recipe in split_recipes('wide', 15):
        assert min(all_widths(recipe)) > top_width
    for recipe in split_recipes('deep', 15):
        assert recipe.depth > top_depth
    for recipe in split_recipes('dense', 15):
        cells = [c for stage in recipe.stages for c in stage.cells]
        assert cells and all(c.is_dense and len(c.nodes) > top_nodes
                             for c in cells)
    for model in sample_split('bn_free', 15):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        assert 'batch_norm' not in model.recipe.block_kinds()
    for recipe in split_recipes('transformer', 15):
        assert recipe.family == 'transformer' and not recipe.stages
    for recipe in split_recipes('id', 15):
        assert min(all_widths(recipe)) >= TRAIN.width[0]
        assert max(all_widths(recipe)) <= top_width
    assert split_space('id') == TRAIN


def test_split_budgets_scale_with_the_split():
    small = ArchSpace(max_params=50_000)
    assert split_space('wide', small).max_params == 200_000
    assert split_space('deep', small).max_params == 100_000
    for recipe in split_recipes('wide', 5, space=small):
        assert count_parameters(recipe) <= 200_000
    assert split_space('wide', ArchSpace(max_params=None)).max_params is None


@pytest.mark.parametrize('name', SPLITS)
def test_split_samples_convert_with_every_parameter_placed(name):
    for model in sample_split(name, 4):
        graph = to_graph(model, input_shape=(1, 3, 32, 32), strict=False)
        assert graph.unsupported == [], model.name
        assert_valid_graph(graph, model)


def test_bad_split_arguments_are_refused():
    with pytest.raises(GhnlibError, match="unknown split 'ood'"):
        split_recipes('ood', 3)
    with pytest.raises(GhnlibError, match='n must be'):
        split_recipes('id', -1)
    with pytest.raises(GhnlibError, match='exclude holds ArchRecipes'):
        split_recipes('id', 1, exclude=['cnn-1'])
    with pytest.raises(GhnlibError, match='transformers only'):
        split_space('dense', ArchSpace(families=('transformer', )))
    with pytest.raises(GhnlibError, match='expected an ArchSpace'):
        split_space('wide', {'width': (8, 16)})
