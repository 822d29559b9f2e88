"""Every classification model of torchvision converts, with every parameter
placed exactly once, into a DAG reachable from its input."""
import pytest

from ghnlib.graph import to_graph
from graph_checks import assert_valid_graph
from torchvision_zoo import MODELS, build, input_size


def test_the_list_is_complete():
    assert len(MODELS) >= 80
    assert {'resnet50', 'vit_b_16', 'swin_v2_t', 'maxvit_t', 'regnet_y_128gf',
            'googlenet', 'inception_v3'} <= set(MODELS)


@pytest.mark.parametrize('name', MODELS)
def test_every_classification_model_converts(name):
    model = build(name)
    size = input_size(name)
    graph = to_graph(model, input_shape=(1, 3, size, size))
    assert_valid_graph(graph, model)
    assert graph.unsupported == []
    assert graph.opaque == []
    assert graph.shape_failures == []
    assert graph.output_index.numel() == 1
    counts = graph.op_counts()
    assert counts['input'] == 1 and counts['output'] == 1
    assert counts.get('generic', 0) == 0, graph.node_names
    assert counts.get('linear', 0) >= 1 or counts.get('conv', 0) >= 1
    assert graph.virtual_edge_index.size(1) > 0
