"""Every classification model of torchvision converts, with every parameter
placed exactly once, into a DAG reachable from its input."""
import contextlib
from unittest import mock

import pytest
import torch

from ghnlib.graph import to_graph
from ghnlib.utils.torchvision import import_torchvision
from graph_checks import assert_valid_graph

torchvision = import_torchvision()
MODELS = torchvision.models.list_models(module=torchvision.models)


@contextlib.contextmanager
def _no_init():
    """Skips random initialisation: structure is all the graph reads."""
    skip = lambda tensor, *args, **kwargs: tensor  # noqa: E731
    names = [n for n in dir(torch.nn.init) if n.endswith('_') and not n.startswith('_')]
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch.object(torch.nn.init, name, skip))
        yield


def build(name):
    # Data-free parameters make even the 600M-parameter models cheap. A few
    # builders compute layer widths with tensor ops and need a real device.
    try:
        with torch.device('meta'):
            return torchvision.models.get_model(name)
    except NotImplementedError:
        with _no_init():
            return torchvision.models.get_model(name)


def test_the_list_is_complete():
    assert len(MODELS) >= 80
    assert {'resnet50', 'vit_b_16', 'swin_v2_t', 'maxvit_t', 'regnet_y_128gf',
            'googlenet', 'inception_v3'} <= set(MODELS)


@pytest.mark.parametrize('name', MODELS)
def test_every_classification_model_converts(name):
    model = build(name)
    size = 299 if name == 'inception_v3' else 224
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
