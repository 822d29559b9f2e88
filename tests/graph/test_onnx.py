import sys
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper

from ghnlib.errors import GraphConversionError
from ghnlib.graph import from_onnx, to_graph
from graph_checks import assert_valid_graph, reachable_from


def export(model, example, path):
    # optimize=False: the ONNX optimizer would fold batch norms into the
    # convolutions and rename transposed weights.
    torch.onnx.export(model.eval(), (example, ), str(path), dynamo=True,
                      optimize=False, verbose=False)
    return path


def edges_by_op(graph):
    ops = graph.op_names
    return sorted((ops[u], ops[v]) for u, v in graph.edge_index.t().tolist())


def param_shapes(graph):
    return Counter((name, tuple(shape))
                   for names, shapes in zip(graph.node_params, graph.param_shapes)
                   for name, shape in zip(names, shapes))


@pytest.fixture(scope='module')
def resnet18(torchvision, tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    path = export(model, torch.randn(1, 3, 64, 64),
                  tmp_path_factory.mktemp('onnx') / 'resnet18.onnx')
    return model, path


def test_resnet18_matches_to_graph(resnet18):
    model, path = resnet18
    graph = from_onnx(path)
    expected = to_graph(model, input_shape=(1, 3, 64, 64))
    assert graph.op_counts() == expected.op_counts()
    assert graph.op_counts()['batch_norm'] == 20
    assert edges_by_op(graph) == edges_by_op(expected)
    assert param_shapes(graph) == Counter(
        (name, tuple(p.shape)) for name, p in model.named_parameters())
    assert graph.num_params == sum(p.numel() for p in model.parameters())
    assert graph.unsupported == []
    # Running statistics are buffers, not parameters.
    assert not any('running' in n for names in graph.node_params for n in names)
    assert graph.node_params[graph.node_names.index('bn1')] == [
        'bn1.weight', 'bn1.bias']
    fc = graph.op_names.index('linear')
    assert graph.node_params[fc] == ['fc.weight']
    assert graph.op_names[fc + 1] == 'bias'
    assert graph.node_params[fc + 1] == ['fc.bias']
    assert graph.node_shape[fc].tolist() == [1000, 512, 1, 1]


def test_resnet18_graph_is_a_forward_dag_reachable_from_its_input(resnet18):
    model, path = resnet18
    graph = from_onnx(path)
    assert_valid_graph(graph, model)
    assert graph.op_names[graph.input_index.item()] == 'input'
    assert graph.op_names[graph.output_index.item()] == 'output'
    assert graph.output_index.item() == graph.num_nodes - 1
    src, dst = graph.virtual_edge_index
    assert bool((src < dst).all())
    assert bool((graph.virtual_edge_dist >= 2).all())


def test_path_and_model_proto_give_the_same_graph(resnet18):
    _, path = resnet18
    from_path = from_onnx(str(path))
    from_proto = from_onnx(onnx.load(str(path)))
    assert from_path.op_names == from_proto.op_names
    assert from_path.node_params == from_proto.node_params
    assert torch.equal(from_path.edge_index, from_proto.edge_index)
    assert torch.equal(from_path.virtual_edge_index, from_proto.virtual_edge_index)


def test_nodes_out_of_order_are_sorted_topologically(resnet18):
    _, path = resnet18
    proto = onnx.load(str(path))
    expected = from_onnx(proto)
    nodes = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(reversed(nodes))
    graph = from_onnx(proto)
    assert graph.op_counts() == expected.op_counts()
    assert sorted(map(sorted, graph.node_params)) == sorted(
        map(sorted, expected.node_params))
    src, dst = graph.edge_index
    assert bool((src < dst).all())
    assert reachable_from(graph, graph.input_index.tolist()) == set(
        range(graph.num_nodes))


def test_corrupt_and_missing_files_raise(tmp_path):
    corrupt = tmp_path / 'corrupt.onnx'
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GraphConversionError, match='corrupt.onnx') as info:
        from_onnx(corrupt)
    assert 'not a readable ONNX model' in str(info.value)
    with pytest.raises(GraphConversionError, match='missing.onnx'):
        from_onnx(tmp_path / 'missing.onnx')
    with pytest.raises(GraphConversionError, match='to_graph'):
        from_onnx(nn.Linear(2, 2))


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(ImportError, match='pip install onnx'):
        from_onnx('model.onnx')


class ConvVariants(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = F.relu(self.plain(x))
        x = self.dilated(self.grouped(x))
        return F.adaptive_avg_pool2d(self.bn(self.up(x)), 1)


def test_conv_variants_get_their_own_ops(tmp_path):
    model = ConvVariants()
    graph = from_onnx(export(model, torch.randn(1, 3, 8, 8),
                             tmp_path / 'convs.onnx'))
    assert graph.op_names == [
        'input', 'conv', 'bias', 'relu', 'conv_grouped', 'conv_dilated',
        'bias', 'conv_transpose', 'bias', 'batch_norm', 'global_avg_pool',
        'output'
    ]
    assert graph.node_params[4] == ['grouped.weight']
    assert graph.node_shape[4].tolist() == [8, 2, 3, 3]
    expected = to_graph(model, input_shape=(1, 3, 8, 8))
    assert graph.op_counts() == expected.op_counts()
    assert edges_by_op(graph) == edges_by_op(expected)
    assert_valid_graph(graph, model)


class TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 16)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos = nn.Parameter(torch.randn(1, 7, 16))
        self.norm = nn.LayerNorm(16)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.gamma = nn.Parameter(torch.ones(16))
        self.head = nn.Linear(16, 5, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos
        y = self.fc2(F.gelu(self.fc1(self.norm(x))))
        x = x + self.gamma * y
        q = x @ x.transpose(1, 2)
        x = torch.softmax(q, -1) @ x
        return self.head(x[:, 0])


def test_transformer_ops_match_to_graph(tmp_path):
    model = TinyTransformer()
    ids = torch.randint(0, 20, (2, 6))
    graph = from_onnx(export(model, ids, tmp_path / 'transformer.onnx'))
    expected = to_graph(model, ids)
    assert graph.op_counts() == expected.op_counts()
    assert edges_by_op(graph) == edges_by_op(expected)
    ops = dict(zip(graph.op_names, graph.node_params))
    assert ops['embedding'] == ['embed.weight']
    assert ops['class_token'] == ['cls_token']
    assert ops['pos_embedding'] == ['pos']
    assert ops['layer_scale'] == ['gamma']
    assert ops['layer_norm'] == ['norm.weight', 'norm.bias']
    # Linear on 3-D input exports as MatMul + Add: still linear → bias.
    linear = [i for i, op in enumerate(graph.op_names) if op == 'linear']
    assert [graph.node_params[i] for i in linear] == [
        ['fc1.weight'], ['fc2.weight'], ['head.weight']]
    assert [graph.op_names[i + 1] for i in linear[:2]] == ['bias', 'bias']
    assert graph.op_counts()['matmul'] == 2
    assert graph.op_names[graph.input_index.item()] == 'input'
    assert_valid_graph(graph, model)


class ExportedAsDecompositions(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3)
        self.norm = nn.GroupNorm(2, 8)
        self.act = nn.SiLU()
        self.elu = nn.ELU()

    def forward(self, x):
        x = self.elu(self.act(self.norm(self.conv(x))))
        return F.adaptive_max_pool2d(x.unsqueeze(-1), 1).flatten(1)


def test_decomposed_silu_group_norm_and_elu_are_recovered(tmp_path):
    model = ExportedAsDecompositions()
    graph = from_onnx(export(model, torch.randn(2, 4, 10),
                             tmp_path / 'decomposed.onnx'))
    assert graph.op_names == [
        'input', 'conv', 'bias', 'group_norm', 'silu', 'elu',
        'global_max_pool', 'output'
    ]
    assert graph.node_params[3] == ['norm.weight', 'norm.bias']
    expected = to_graph(model, input_shape=(2, 4, 10))
    assert graph.op_counts() == expected.op_counts()
    assert edges_by_op(graph) == edges_by_op(expected)
    assert_valid_graph(graph, model)


def make_model(nodes, inputs, outputs, initializers, opset=13):
    graph = helper.make_graph(nodes, 'hand_made', inputs, outputs, initializers)
    return helper.make_model(graph,
                             opset_imports=[helper.make_opsetid('', opset)])


def tensor(name, *shape):
    return helper.make_tensor(name, TensorProto.FLOAT, shape,
                              np.ones(shape, np.float32).ravel().tolist())


def value(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_initializers_listed_as_inputs_are_not_input_nodes():
    # Opsets before 9 list initializers among the graph inputs.
    proto = make_model(
        [helper.make_node('Gemm', ['x', 'w', 'b'], ['y'], transB=1),
         helper.make_node('ReduceMean', ['y'], ['m'], axes=[1])],
        [value('x', 1, 4), value('w', 3, 4), value('b', 3)],
        [value('m', 1, 1)],
        [tensor('w', 3, 4), tensor('b', 3)])
    graph = from_onnx(proto)
    assert graph.op_names == ['input', 'linear', 'bias', 'mean', 'output']
    assert graph.node_names[0] == 'x'
    assert graph.node_params == [[], ['w'], ['b'], [], []]
    assert graph.param_shapes[1] == [(3, 4)]


def test_unplaced_initializers_raise_when_strict():
    # `orphan` feeds a computation whose result never meets the data.
    proto = make_model(
        [helper.make_node('Relu', ['x'], ['y']),
         helper.make_node('Relu', ['orphan'], ['unused'])],
        [value('x', 1, 4)], [value('y', 1, 4)], [tensor('orphan', 4, 4)])
    with pytest.raises(GraphConversionError, match="'orphan'"):
        from_onnx(proto)
    graph = from_onnx(proto, strict=False)
    assert [name for name, _ in graph.unsupported] == ['orphan']
    assert graph.op_names == ['input', 'relu', 'output']


def test_unknown_input_is_reported():
    proto = make_model([helper.make_node('Relu', ['ghost'], ['y'])],
                       [value('x', 1, 4)], [value('y', 1, 4)], [])
    with pytest.raises(GraphConversionError, match="'ghost'"):
        from_onnx(proto)
