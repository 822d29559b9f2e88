import dataclasses
import json

import pytest

from ghnlib.archspace import (ARCHSPACE_VERSION, BLOCK_KINDS, ArchRecipe,
                              ArchSpace, CellSpec, ConvStageSpec, HeadSpec,
                              NodeSpec, OpSpec, StemSpec, TokenBlockSpec,
                              TokenStageSpec)
from ghnlib.errors import GhnlibError


def conv(kernel=3):
    return OpSpec('conv', kernel)


def chain_cell(*ops, **kwargs):
    nodes = tuple(NodeSpec((i, ), (op, )) for i, op in enumerate(ops))
    return CellSpec(nodes, (len(ops) - 1, ), **kwargs)


def cnn_recipe(**changes):
    recipe = ArchRecipe(
        seed=3, family='cnn', in_channels=3, num_classes=10,
        input_size=(32, 32), norm='batch', act='relu',
        stem=StemSpec(16, 3), stages=(
            ConvStageSpec(16, 'none', (chain_cell(conv(), conv(5)), )),
            ConvStageSpec(32, 'max_pool', (chain_cell(
                OpSpec('grouped_conv', 3, groups=32)), ))),
        tokens=None, head=HeadSpec('avg', (24, )))
    return dataclasses.replace(recipe, **changes)


def hybrid_recipe(patch=4):
    return cnn_recipe(family='hybrid', tokens=TokenStageSpec(
        24, patch, (TokenBlockSpec('mha', 48, heads=3),
                    TokenBlockSpec('mixer', 16, token_hidden=8))))


def test_json_round_trip_gives_an_equal_recipe():
    for recipe in [cnn_recipe(), hybrid_recipe()]:
        text = recipe.to_json()
        assert json.loads(text) == recipe.to_dict()
        again = ArchRecipe.from_json(text)
        assert again == recipe
        assert again.to_json() == text
        assert isinstance(again.stages[0].cells, tuple)
        assert isinstance(again.input_size, tuple)


def test_sampled_recipes_survive_json():
    for recipe in ArchSpace(max_params=None).sample_recipes(40, seed=11):
        assert ArchRecipe.from_dict(json.loads(recipe.to_json())) == recipe


def test_signature_and_name_ignore_nothing_but_the_seed():
    a, b = cnn_recipe(), cnn_recipe(seed=4)
    assert a.signature() == b.signature()
    assert a.name != b.name and a.name.startswith('cnn-3-')
    other = cnn_recipe(act='gelu')
    assert other.signature() != a.signature()
    assert other.name.split('-')[2] != a.name.split('-')[2]


def test_feature_size_and_tokens_follow_the_strides():
    recipe = hybrid_recipe()
    assert recipe.feature_size() == (16, 16)
    assert recipe.num_tokens == 16
    odd = cnn_recipe(input_size=(9, 7), stem=StemSpec(16, 5, stride=2))
    assert odd.feature_size() == (3, 2)


def test_block_kinds_of_a_hand_made_recipe():
    kinds = hybrid_recipe().block_kinds()
    assert kinds == {'relu', 'batch_norm', 'conv_stem', 'conv3x3', 'conv5x5',
                     'downsample_max_pool', 'depthwise_conv',
                     'patch_embedding', 'layer_norm', 'pos_embedding', 'mha',
                     'mixer', 'residual', 'token_mean', 'mlp_head'}
    assert kinds <= set(BLOCK_KINDS)
    cell = CellSpec((NodeSpec((0, ), (conv(1), )),
                     NodeSpec((0, 1), (conv(7), OpSpec('identity')),
                              'concat')),
                    (0, 1), output_merge='sum', residual=True, se_channels=8)
    stages = (ConvStageSpec(16, 'none', (cell, )), )
    kinds = cnn_recipe(stages=stages).block_kinds()
    assert {'conv1x1', 'conv7x7', 'identity', 'concat_merge', 'sum_merge',
            'residual', 'dense', 'squeeze_excitation',
            'global_avg_pool'} <= kinds


@pytest.mark.parametrize('make, message', [
    (lambda: OpSpec('conv9'), "OpSpec.kind"),
    (lambda: OpSpec('conv', 4), 'OpSpec.kernel'),
    (lambda: OpSpec('grouped_conv', 3), 'groups > 1'),
    (lambda: OpSpec('dil_conv', 3), 'dilation > 1'),
    (lambda: NodeSpec((1, 0), (conv(), conv())), 'increasing order'),
    (lambda: NodeSpec((0, ), (conv(), conv())), 'one op per input'),
    (lambda: NodeSpec((0, ), (conv(), ), 'mul'), 'NodeSpec.merge'),
    (lambda: CellSpec((NodeSpec((2, ), (conv(), )), ), (0, )), 'states 0'),
    (lambda: CellSpec((NodeSpec((0, ), (conv(), )),
                       NodeSpec((0, ), (conv(), ))), (1, )),
     'nodes [0] are read by no node'),
    (lambda: ConvStageSpec(20, 'none', (chain_cell(
        OpSpec('grouped_conv', 3, groups=8)), )), 'does not divide'),
    (lambda: StemSpec(16, 4), 'odd kernel'),
    (lambda: TokenStageSpec(20, 2, (TokenBlockSpec('mha', 8, heads=3), )),
     'heads do not divide'),
    (lambda: TokenBlockSpec('mha', 8, token_hidden=4), 'only mixer'),
    (lambda: cnn_recipe(version=ARCHSPACE_VERSION + 1), 'version'),
    (lambda: cnn_recipe(stages=()), 'convolutional stages'),
    (lambda: cnn_recipe(tokens=hybrid_recipe().tokens), 'tokens=None'),
    (lambda: hybrid_recipe(patch=5), 'does not divide the 16x16'),
    (lambda: cnn_recipe(stages=(ConvStageSpec(16, 'conv', (chain_cell(
        conv()), )), )), "downsample='none'"),
    (lambda: ArchRecipe.from_dict({**cnn_recipe().to_dict(), 'colour': 1}),
     "unknown fields ['colour']"),
    (lambda: ArchRecipe.from_dict({'seed': 1}), 'missing fields'),
    (lambda: ArchRecipe.from_json('{"seed": '), 'not valid JSON'),
])
def test_bad_recipes_are_refused_with_the_field_named(make, message):
    with pytest.raises(GhnlibError, match=message.replace('[', r'\[').replace(
            ']', r'\]')):
        make()
