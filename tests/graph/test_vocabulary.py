import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ghnlib.graph import OP_INDEX, OPS, RELU_LIKE, VOCABULARY_VERSION
from ghnlib.graph.vocabulary import (function_op, is_shape_only_function,
                                     is_shape_only_method, method_op,
                                     module_node_layout, module_op, op_index)


def test_vocabulary_is_versioned_and_unique():
    assert isinstance(VOCABULARY_VERSION, int) and VOCABULARY_VERSION >= 1
    assert len(set(OPS)) == len(OPS)
    assert all(OPS[OP_INDEX[name]] == name for name in OPS)
    assert RELU_LIKE <= set(OPS)
    with pytest.raises(ValueError, match='Unknown op'):
        op_index('convolution')


@pytest.mark.parametrize('module, op', [
    (nn.Conv2d(4, 4, 3), 'conv'),
    (nn.Conv2d(4, 4, 3, groups=4), 'conv_grouped'),
    (nn.Conv1d(4, 4, 3, dilation=3), 'conv_dilated'),
    (nn.ConvTranspose2d(4, 4, 3), 'conv_transpose'),
    (nn.Linear(3, 3), 'linear'),
    (nn.BatchNorm2d(3), 'batch_norm'),
    (nn.LayerNorm(3), 'layer_norm'),
    (nn.GroupNorm(1, 3), 'group_norm'),
    (nn.AdaptiveAvgPool2d(1), 'global_avg_pool'),
    (nn.AdaptiveAvgPool2d((1, 1)), 'global_avg_pool'),
    (nn.AdaptiveAvgPool2d(7), 'adaptive_avg_pool'),
    (nn.AdaptiveMaxPool2d(1), 'global_max_pool'),
    (nn.MaxPool2d(2), 'max_pool'),
    (nn.ReLU6(), 'relu'),
    (nn.GELU(), 'gelu'),
    (nn.Hardswish(), 'hardswish'),
    (nn.MultiheadAttention(8, 2), 'attention'),
    (nn.LSTM(3, 3), 'module'),
    (nn.Upsample(scale_factor=2), 'upsample'),
])
def test_module_ops(module, op):
    assert module_op(module) == op


def test_subclasses_of_known_layers_keep_their_op():
    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    assert module_op(LayerNorm2d(4)) == 'layer_norm'


def test_layouts_split_bias_and_attention():
    assert module_node_layout(nn.Linear(2, 3), 'linear') == [
        ('linear', ['weight']), ('bias', ['bias'])]
    assert module_node_layout(nn.Linear(2, 3, bias=False), 'linear') == [
        ('linear', ['weight'])]
    assert module_node_layout(nn.BatchNorm2d(3), 'batch_norm') == [
        ('batch_norm', ['weight', 'bias'])]
    assert module_node_layout(nn.MultiheadAttention(8, 2), 'attention') == [
        ('attention', ['in_proj_weight', 'in_proj_bias']),
        ('linear', ['out_proj.weight']), ('bias', ['out_proj.bias'])]


def test_function_and_method_ops():
    assert function_op(operator.add) == 'sum'
    assert function_op(torch.cat) == 'concat'
    assert function_op(F.conv2d, (None, None, None, 1, 0, 1, 4)) == 'conv_grouped'
    assert function_op(F.conv2d, (None, None), {'dilation': 2}) == 'conv_dilated'
    assert function_op(torch.mean, (None, (2, 3)), input_ndim=4) == 'global_avg_pool'
    assert function_op(torch.mean, (None, -1), input_ndim=3) == 'mean'
    assert function_op(F.adaptive_avg_pool2d, (None, 1)) == 'global_avg_pool'
    assert function_op(torch.erf) == 'generic'
    assert method_op('mean', ((-2, -1), ), input_ndim=4) == 'global_avg_pool'
    assert method_op('softmax', (-1, )) == 'softmax'
    assert method_op('erf') == 'generic'
    assert is_shape_only_function(torch.flatten)
    assert not is_shape_only_function(torch.cat)
    assert is_shape_only_method('view') and not is_shape_only_method('add')
