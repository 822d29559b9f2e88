import math

import pytest
import torch
import torch.fx
import torch.nn as nn

from ghnlib.models import ShortcutA, get_model

# depth -> (n, parameters in the paper, exact count with option A)
DEPTHS = {
    20: (3, 0.27e6, 269_722),
    32: (5, 0.46e6, 464_154),
    44: (7, 0.66e6, 658_586),
    56: (9, 0.85e6, 853_018),
    110: (18, 1.7e6, 1_727_962),
}


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def projection_params(width):
    """Parameters of the two 1x1 conv + BN projections of option B."""
    return sum(c_in * c_out + 2 * c_out
               for c_in, c_out in [(width, 2 * width), (2 * width, 4 * width)])


@pytest.mark.parametrize('depth', DEPTHS)
def test_parameter_count_matches_paper(depth):
    _, paper, exact = DEPTHS[depth]
    count = num_params(get_model(f'resnet{depth}'))
    assert count == exact
    assert abs(count / paper - 1) <= 0.02


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('shortcut, extra', [('A', 0), ('B', 2)])
def test_number_of_conv_layers(depth, shortcut, extra):
    n = DEPTHS[depth][0]
    model = get_model(f'resnet{depth}', shortcut=shortcut)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 * n + 1 + extra
    assert all(c.bias is None for c in convs)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == len(convs)
    shortcuts = [m for m in model.modules() if isinstance(m, ShortcutA)]
    assert len(shortcuts) == (2 if shortcut == 'A' else 0)


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('in_channels', [1, 3])
def test_output_shape(depth, in_channels):
    model = get_model(f'resnet{depth}', in_channels=in_channels,
                      num_classes=7)
    out = model(torch.randn(2, in_channels, 32, 32))
    assert out.shape == (2, 7)


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('width', [16, 8])
def test_option_b_adds_projection_parameters(depth, width):
    a = num_params(get_model(f'resnet{depth}', width=width))
    b = num_params(get_model(f'resnet{depth}', width=width, shortcut='B'))
    assert b - a == projection_params(width)
    if width == 16:
        assert b - a == 2752


def test_width_scales_stages():
    model = get_model('resnet20', width=8)
    assert model.conv1.out_channels == 8
    assert model.layer2[0].conv1.out_channels == 16
    assert model.layer3[-1].conv2.out_channels == 32
    assert model.fc.in_features == 32


def test_invalid_shortcut_raises():
    with pytest.raises(ValueError, match="'A' or 'B', got 'C'"):
        get_model('resnet20', shortcut='C')


def test_shortcut_a_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.equal(out[:, 16:], torch.zeros(2, 16, 4, 4))
    with pytest.raises(ValueError):
        ShortcutA(32, 16)


def test_option_a_block_uses_shortcut_a():
    model = get_model('resnet20')
    block = model.layer2[0]
    assert isinstance(block.shortcut, ShortcutA)
    x = torch.randn(1, 16, 32, 32)
    out = block.shortcut(x)
    assert out.shape == (1, 32, 16, 16)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert not out[:, 16:].any()
    assert isinstance(model.layer1[0].shortcut, nn.Identity)


def test_initialisation():
    model = get_model('resnet56')
    conv = model.layer3[4].conv1
    fan_out = conv.out_channels * 9
    assert conv.weight.mean().abs() < 0.005
    assert math.isclose(conv.weight.std().item(), math.sqrt(2 / fan_out),
                        rel_tol=0.05)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
               for bn in bns)


@pytest.mark.parametrize('depth', DEPTHS)
@pytest.mark.parametrize('shortcut', ['A', 'B'])
def test_fx_trace_matches_eager(depth, shortcut):
    torch.manual_seed(0)
    model = get_model(f'resnet{depth}', shortcut=shortcut)
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.1, 0.1)
    model.eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        out = traced(x)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-4)
    assert out.abs().max() > 0
    if shortcut == 'A':
        pads = [node for node in traced.graph.nodes
                if node.op == 'call_function' and 'pad' in str(node.target)]
        assert len(pads) == 2
