import math

import pytest

from ghnlib.graph import to_graph
from ghnlib.graph.vocabulary import NORM_OPS, WEIGHT_OPS
from ghnlib.models import get_model
from ghnlib.nn.parameter_plan import plan_parameters


def test_plan_gain_and_classifier():
    graph = to_graph(get_model('resnet20'))
    plan = {task.name: task for task in plan_parameters(graph, num_classes=10)}
    conv = plan['conv1.weight']  # conv → bn → relu: beta = 2
    assert conv.kind == 'weight' and not conv.classifier
    assert conv.scale == pytest.approx(math.sqrt(2 / (3 * 3 * 3)))
    fc = plan['fc.weight']  # classifier, followed by nothing ReLU-like
    assert fc.classifier
    assert fc.scale == pytest.approx(math.sqrt(1 / 64))
    assert plan['bn1.weight'].kind == 'norm_weight'
    assert plan['bn1.bias'].kind == 'norm_bias'
    assert plan['fc.bias'].kind == 'bias'
    # The second conv of a block feeds the residual sum, then a ReLU.
    assert plan['layer1.0.conv2.weight'].scale == pytest.approx(
        math.sqrt(1 / (16 * 9)))



def test_kinds_follow_the_vocabulary_categories():
    graph = to_graph(get_model('resnet20'))
    ops = graph.op_names
    for task in plan_parameters(graph, num_classes=10):
        op = ops[task.node]
        if len(task.shape) >= 2:
            assert task.kind == 'weight' and op in WEIGHT_OPS
        elif op in NORM_OPS:
            assert task.kind in ('norm_weight', 'norm_bias')
        else:
            assert task.kind in ('bias', 'vector')
