import pytest
import torch
import torch.nn as nn

from ghnlib.graph import to_graph
from ghnlib.graph.export import ExportGraphBuilder, export_program
from ghnlib.graph.recorder import GraphRecorder
from graph_checks import assert_valid_graph


class ValueBranch(nn.Module):
    """Branches on tensor values with torch.cond: fx cannot trace it,
    torch.export captures both branches."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.positive = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.negative = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.stem(x)
        h = torch.cond(h.sum() > 0, lambda t: self.positive(t),
                       lambda t: self.negative(t), (h, ))
        return self.head(h)


def test_value_dependent_branches_convert_through_torch_export():
    model = ValueBranch()
    graph = to_graph(model, input_shape=(2, 4))
    assert graph.frontend.startswith('torch.export (torch.fx failed')
    # The predicate's reduction and comparison are ops of their own.
    assert graph.op_counts() == {'input': 1, 'linear': 4, 'bias': 3,
                                 'relu': 1, 'generic': 2, 'output': 1}
    assert any(name.startswith('true_graph_0/') for name in graph.node_names)
    assert any(name.startswith('false_graph_0/') for name in graph.node_names)
    owner = {n: graph.node_names[i] for i, ps in enumerate(graph.node_params)
             for n in ps}
    assert set(owner) == {n for n, _ in model.named_parameters()}
    # Both branches and the predicate feed the head.
    head = graph.node_params.index(['head.weight'])
    preds = graph.edge_index[0, graph.edge_index[1] == head].tolist()
    assert sorted(graph.op_names[p] for p in preds) == ['generic', 'linear',
                                                        'relu']
    assert_valid_graph(graph, model)


def test_failing_fallback_reports_both_front_ends():
    class Unexportable(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            if x.max() > 0:
                x = self.fc(x)
            return x

    with pytest.raises(Exception) as info:
        to_graph(Unexportable(), input_shape=(2, 4))
    message = str(info.value)
    assert 'torch.fx cannot trace' in message
    assert 'torch.export fallback failed too' in message
    assert 'torch.cond' in message


def export_graph(model, inputs, training=True):
    program = export_program(model, inputs, training)
    builder = ExportGraphBuilder(dict(model.named_parameters()), program)
    builder.build()
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    return builder.to_arch_graph(shapes, ve_cutoff=50)


# (nn.MultiheadAttention differs by design: fx keeps it as one attention
# node; export shows its input projection as a linear layer.)
@pytest.mark.parametrize('name', ['resnet18', 'mobilenet_v3_small',
                                  'convnext_tiny'])
def test_aten_front_end_matches_the_fx_front_end(torchvision, name):
    model = torchvision.models.get_model(name)
    fx_graph = to_graph(model, input_shape=(1, 3, 224, 224), training=False)
    aten_graph = export_graph(
        model, {'x': torch.empty(1, 3, 224, 224, device='meta')},
        training=False)
    assert aten_graph.op_counts() == fx_graph.op_counts()
    assert aten_graph.node_params == fx_graph.node_params
    assert torch.equal(aten_graph.edge_index, fx_graph.edge_index)


def test_recorder_is_shared():
    assert issubclass(ExportGraphBuilder, GraphRecorder)
