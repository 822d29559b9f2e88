import collections
import json
import os
import subprocess
import sys

import pytest
import torch.nn as nn

from ghnlib.archspace import (BLOCK_KINDS, TRAIN_SEEDS, ArchSpace, build,
                              count_parameters, sample, sample_recipes)
from ghnlib.archspace.blocks import ChannelLayerNorm
from ghnlib.errors import GhnlibError


def widths(recipe):
    found = [stage.width for stage in recipe.stages]
    if recipe.stem is not None:
        found.append(recipe.stem.width)
    if recipe.tokens is not None:
        found.append(recipe.tokens.width)
    return found


def test_a_seed_gives_the_same_recipe_and_structure():
    space = ArchSpace()
    first = space.sample_recipes(20, seed=5)
    assert first == space.sample_recipes(20, seed=5)
    assert first[3:] == space.sample_recipes(17, seed=8)
    assert len({r.signature() for r in first}) == 20
    assert [r.seed for r in first] == list(range(5, 25))
    for a, b in zip(space.sample(4, seed=5), sample(4, seed=5)):
        assert repr(a) == repr(b)
        assert ([(n, p.shape) for n, p in a.named_parameters()]
                == [(n, p.shape) for n, p in b.named_parameters()])


_PRINT_RECIPES = ('from ghnlib.archspace import sample_recipes; '
                  'print("\\n".join(r.to_json() for r in '
                  'sample_recipes(12, seed=40, input_size=16)))')


@pytest.mark.slow
def test_recipes_are_equal_across_processes():
    outputs = []
    for hash_seed in ('0', '4242'):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run([sys.executable, '-c', _PRINT_RECIPES],
                                capture_output=True, text=True, env=env,
                                check=True)
        outputs.append(result.stdout.split())
    here = [r.to_json() for r in sample_recipes(12, seed=40, input_size=16)]
    assert outputs[0] == outputs[1] == here


def test_every_block_kind_occurs():
    counts = collections.Counter()
    for recipe in ArchSpace().sample_recipes(300, seed=0):
        kinds = recipe.block_kinds()
        assert kinds <= set(BLOCK_KINDS)
        counts.update(kinds)
    assert set(BLOCK_KINDS) - set(counts) == set()
    families = collections.Counter(r.family for r in sample_recipes(60))
    assert set(families) == {'cnn', 'hybrid', 'transformer'}


def test_block_kinds_match_the_modules():
    for recipe in ArchSpace().sample_recipes(40, seed=1000):
        model = build(recipe)
        kinds = recipe.block_kinds()
        types = {type(m) for m in model.modules()}
        assert (nn.BatchNorm2d in types) == ('batch_norm' in kinds)
        assert (nn.GroupNorm in types) == ('group_norm' in kinds)
        assert (nn.LayerNorm in types) == ('layer_norm' in kinds)
        assert (nn.MultiheadAttention in types) == ('mha' in kinds)
        assert (nn.MaxPool2d in types) == bool(
            kinds & {'max_pool', 'downsample_max_pool'})
        if ChannelLayerNorm in types:
            assert recipe.norm == 'layer'


@pytest.mark.parametrize('budget', [30_000, 150_000])
def test_the_parameter_budget_is_respected(budget):
    space = ArchSpace(width=(16, 128), depth=(4, 10), max_params=budget)
    recipes = space.sample_recipes(12, seed=77)
    for recipe in recipes:
        assert count_parameters(recipe) <= budget
    unbounded = ArchSpace(width=(16, 128), depth=(4, 10), max_params=None)
    free = unbounded.sample_recipes(12, seed=77)
    over = [i for i, r in enumerate(free) if count_parameters(r) > budget]
    assert over  # the budget binds ...
    assert all(recipes[i] != free[i] for i in over)  # ... and changes those


def test_over_budget_draws_are_scaled_down(monkeypatch):
    fitted = []
    fit = ArchSpace._fit

    def spy(space, recipe):
        result = fit(space, recipe)
        fitted.append((recipe, result))
        return result

    monkeypatch.setattr(ArchSpace, '_fit', spy)
    space = ArchSpace(families=('cnn', ), width=(8, 256), depth=(6, 8),
                      nodes=(3, 4), max_params=40_000)
    recipes = space.sample_recipes(4, seed=1)
    assert all(count_parameters(r) <= 40_000 for r in recipes)
    scaled = [(draw, result) for draw, result in fitted if result is not None]
    assert scaled and all(result in recipes for _, result in scaled)
    for draw, result in scaled:
        assert count_parameters(draw) > 40_000
        assert all(small <= big for small, big in zip(widths(result),
                                                      widths(draw)))
        assert widths(result) != widths(draw)
        # Only widths change: the ops, connections and depth stay.
        assert [[[op.kind for node in cell.nodes for op in node.ops]
                 for cell in stage.cells] for stage in result.stages] == [
                     [[op.kind for node in cell.nodes for op in node.ops]
                      for cell in stage.cells] for stage in draw.stages]


def test_widths_and_depths_stay_in_their_ranges():
    space = ArchSpace(width=(24, 48), depth=(3, 5), nodes=(2, 3),
                      max_params=None)
    for recipe in space.sample_recipes(40, seed=9):
        assert all(24 <= w <= 48 and w % 8 == 0 for w in widths(recipe))
        assert 3 <= recipe.depth <= 5
        for stage in recipe.stages:
            for cell in stage.cells:
                assert 2 <= len(cell.nodes) <= 3


def test_space_restrictions_are_followed():
    space = ArchSpace(families=('cnn', ), norms=('group', ),
                      activations=('silu', ), ops=('sep_conv', 'identity'),
                      connectivity=('chain', ))
    for recipe in space.sample_recipes(20):
        assert recipe.family == 'cnn' and recipe.norm == 'group'
        assert recipe.act == 'silu'
        ops = {op.kind for stage in recipe.stages for cell in stage.cells
               for node in cell.nodes for op in node.ops}
        assert ops <= {'sep_conv', 'identity'}
        assert all(node.inputs == (i, ) for stage in recipe.stages
                   for cell in stage.cells
                   for i, node in enumerate(cell.nodes))


def test_tokens_fit_the_input():
    for size in [(8, 8), (28, 28), (12, 20), (7, 7)]:
        space = ArchSpace(input_size=size, families=('transformer', ))
        for recipe in space.sample_recipes(8):
            assert 1 <= recipe.num_tokens <= 64
            assert size[0] % recipe.tokens.patch == 0
            assert size[1] % recipe.tokens.patch == 0


def test_an_impossible_budget_is_an_error():
    with pytest.raises(GhnlibError, match='fits max_params=100 .* raise '
                       'max_params'):
        ArchSpace(max_params=100).recipe(0)


def test_training_seeds_stop_where_the_splits_start():
    space = ArchSpace()
    with pytest.raises(GhnlibError, match='training seeds are 0'):
        space.sample_recipes(2, seed=TRAIN_SEEDS - 1)
    with pytest.raises(GhnlibError, match='seed'):
        space.sample_recipes(1, seed=-1)
    assert len(space.sample_recipes(1, seed=TRAIN_SEEDS - 1)) == 1


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=0), 'in_channels'),
    (dict(num_classes=2.5), 'num_classes'),
    (dict(input_size=(32, )), 'input_size'),
    (dict(input_size=0), 'input_size'),
    (dict(width=(64, 16)), 'width'),
    (dict(width=(1, 7)), 'multiples of 8'),
    (dict(depth=(0, 3)), 'depth'),
    (dict(depth=(1, 1)), 'hybrid'),
    (dict(nodes=[3]), 'nodes'),
    (dict(max_params=0), 'max_params'),
    (dict(families=('resnet', )), 'families'),
    (dict(norms='batch'), 'norms'),
    (dict(ops=()), 'ops'),
    (dict(connectivity=('full', )), 'connectivity'),
    (dict(token_blocks=('conv', )), 'token_blocks'),
    (dict(max_stages=0), 'max_stages'),
])
def test_bad_space_arguments_are_refused(kwargs, message):
    with pytest.raises(GhnlibError, match=message):
        ArchSpace(**kwargs)


def test_recipes_serialise_to_json_lists():
    data = json.loads(sample_recipes(1, seed=2)[0].to_json())
    assert data['seed'] == 2 and isinstance(data['input_size'], list)
