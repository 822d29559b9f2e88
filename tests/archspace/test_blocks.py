import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ghnlib.archspace import CellSpec, NodeSpec, OpSpec, TokenBlockSpec
from ghnlib.archspace.blocks import (Cell, ChannelLayerNorm, ConcatMerge,
                                     Downsample, MixerBlock, PatchEmbedding,
                                     SelfAttention, SqueezeExcitation,
                                     SumMerge, TransformerBlock, cell_op,
                                     make_activation, make_norm)
from ghnlib.errors import GhnlibError


def generator():
    return torch.Generator().manual_seed(0)


def test_channel_layer_norm_is_a_layer_norm_over_the_channels():
    norm = ChannelLayerNorm(6)
    assert isinstance(norm.norm, nn.LayerNorm)
    with torch.no_grad():
        norm.norm.weight.uniform_(0.5, 1.5, generator=generator())
        norm.norm.bias.uniform_(-1, 1, generator=generator())
    x = torch.randn(2, 6, 3, 5, generator=generator())
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    expected = ((x - mean) / torch.sqrt(var + 1e-5)
                * norm.norm.weight.view(1, -1, 1, 1)
                + norm.norm.bias.view(1, -1, 1, 1))
    assert torch.allclose(norm(x), expected, atol=1e-5)
    assert repr(norm) == 'ChannelLayerNorm(6)'


def test_make_norm_and_activation():
    assert isinstance(make_norm('batch', 16), nn.BatchNorm2d)
    assert isinstance(make_norm('layer', 16), ChannelLayerNorm)
    group = make_norm('group', 24)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 8
    assert make_norm('group', 12).num_groups == 4
    assert isinstance(make_norm('none', 16), nn.Identity)
    assert isinstance(make_activation('hardswish'), nn.Hardswish)
    with pytest.raises(GhnlibError, match="unknown norm 'instance'"):
        make_norm('instance', 8)
    with pytest.raises(GhnlibError, match="unknown activation 'tanh'"):
        make_activation('tanh')


@pytest.mark.parametrize('spec, conv', [
    (OpSpec('conv', 7), dict(kernel_size=(7, 7), groups=1, dilation=(1, 1))),
    (OpSpec('grouped_conv', 3, groups=4), dict(groups=4)),
    (OpSpec('dil_conv', 5, dilation=2), dict(dilation=(2, 2),
                                             padding=(4, 4))),
])
def test_cell_ops_keep_the_shape(spec, conv):
    op = cell_op(spec, 16, 'none', 'relu')
    first = op[0]
    for name, value in conv.items():
        assert getattr(first, name) == value
    assert first.bias is not None  # no norm: the convolution has a bias
    assert op(torch.randn(2, 16, 5, 5)).shape == (2, 16, 5, 5)


def test_separable_conv_is_depthwise_then_pointwise():
    op = cell_op(OpSpec('sep_conv', 5), 16, 'batch', 'gelu')
    depthwise, pointwise = op[0], op[1]
    assert depthwise.groups == 16 and depthwise.kernel_size == (5, 5)
    assert pointwise.kernel_size == (1, 1) and pointwise.bias is None
    assert isinstance(op[2], nn.BatchNorm2d) and isinstance(op[3], nn.GELU)


def test_pooling_ops_equal_functional_pooling():
    x = torch.randn(2, 8, 6, 6, generator=generator())
    max_pool = cell_op(OpSpec('max_pool', 3), 8, 'batch', 'relu')
    assert torch.equal(max_pool(x), F.max_pool2d(x, 3, 1, 1))
    avg_pool = cell_op(OpSpec('avg_pool', 3), 8, 'batch', 'relu')
    ones = torch.ones(1, 1, 3, 3)
    assert torch.allclose(avg_pool(ones), ones)  # padding is not averaged
    assert cell_op(OpSpec('identity'), 8, 'batch', 'relu')(x) is x


def test_merges():
    xs = [torch.randn(2, 4, 3, 3, generator=generator()) for _ in range(3)]
    assert torch.allclose(SumMerge()(xs), xs[0] + xs[1] + xs[2])
    assert SumMerge()(xs[:1]) is xs[0]
    merge = ConcatMerge(3, 4, 'none')
    conv = merge.project[0]
    assert conv.in_channels == 12 and conv.out_channels == 4
    expected = F.conv2d(torch.cat(xs, 1), conv.weight, conv.bias)
    assert torch.allclose(merge(xs), expected, atol=1e-6)


def test_squeeze_excitation_gates_channels():
    se = SqueezeExcitation(8, 4, 'relu')
    x = torch.randn(2, 8, 5, 5, generator=generator())
    hidden = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), se.reduce.weight,
                             se.reduce.bias))
    gate = torch.sigmoid(F.conv2d(hidden, se.expand.weight, se.expand.bias))
    assert torch.allclose(se(x), x * gate, atol=1e-6)


def test_cell_computes_its_dag():
    spec = CellSpec(
        (NodeSpec((0, ), (OpSpec('identity'), )),
         NodeSpec((0, 1), (OpSpec('max_pool', 3), OpSpec('identity')))),
        (0, 1), output_merge='sum', residual=True)
    cell = Cell(spec, 4, 'none', 'relu')
    assert not list(cell.parameters())
    x = torch.randn(2, 4, 5, 5, generator=generator())
    # node 0 = x, node 1 = maxpool(x) + x; output = node 0 + node 1 + x
    expected = x + (F.max_pool2d(x, 3, 1, 1) + x) + x
    assert torch.allclose(cell(x), expected)


@pytest.mark.parametrize('kind, size, out', [
    ('conv', 7, 4), ('max_pool', 8, 4), ('avg_pool', 1, 1), ('none', 5, 5)])
def test_downsample_halves_rounding_up(kind, size, out):
    down = Downsample(kind, 8, 16, 'batch', 'silu')
    assert down(torch.randn(2, 8, size, size)).shape == (2, 16, out, out)
    same = Downsample(kind, 8, 8, 'batch', 'silu')
    if kind != 'conv':
        assert not list(same.parameters())


def test_patch_embedding():
    embed = PatchEmbedding(3, 16, 4, 4)
    x = torch.randn(2, 3, 8, 8, generator=generator())
    tokens = embed(x)
    assert tokens.shape == (2, 4, 16)
    patch = x[:, :, 4:8, 0:4]  # the third patch, row-major
    expected = (torch.einsum('nchw,dchw->nd', patch, embed.proj.weight)
                + embed.proj.bias + embed.pos[0, 2])
    assert torch.allclose(tokens[:, 2], expected, atol=1e-5)
    assert PatchEmbedding(3, 16, 4, 4, pos_embedding=False).pos is None


def test_self_attention_equals_scaled_dot_product_attention():
    attention = SelfAttention(16, 4)
    x = torch.randn(2, 5, 16, generator=generator())

    def heads(linear):
        return linear(x).view(2, 5, 4, 4).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(attention.query),
                                         heads(attention.key),
                                         heads(attention.value))
    expected = attention.out(out.transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attention(x), expected, atol=1e-5)


@pytest.mark.parametrize('kind', ['mha', 'self_attention'])
def test_transformer_block_is_pre_norm_residual(kind):
    block = TransformerBlock(TokenBlockSpec(kind, 32, heads=2), 16, 'layer',
                             'gelu')
    x = torch.randn(2, 5, 16, generator=generator())
    mid = x + block.attn(block.norm1(x))
    assert torch.allclose(block(x), mid + block.mlp(block.norm2(mid)),
                          atol=1e-6)
    assert isinstance(block.norm1, nn.LayerNorm)
    bare = TransformerBlock(TokenBlockSpec(kind, 32, heads=2), 16, 'none',
                            'gelu')
    assert not any(isinstance(m, nn.LayerNorm) for m in bare.modules())


def test_mixer_block_mixes_tokens_then_channels():
    block = MixerBlock(TokenBlockSpec('mixer', 32, token_hidden=8), 16, 5,
                       'layer', 'relu')
    assert block.token_mlp[0].in_features == 5
    x = torch.randn(2, 5, 16, generator=generator())
    normed = F.layer_norm(x, (16, ), block.norm1.weight, block.norm1.bias)
    mixed = x + block.token_mlp(normed.transpose(1, 2)).transpose(1, 2)
    expected = mixed + block.channel_mlp(block.norm2(mixed))
    assert torch.allclose(block(x), expected, atol=1e-6)
