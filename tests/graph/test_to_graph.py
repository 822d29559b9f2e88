import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ghnlib.errors import GraphConversionError
from ghnlib.graph import OPS, ArchGraph, to_graph
from graph_checks import assert_valid_graph, reachable_from


def edges_by_op(graph):
    ops = graph.op_names
    return sorted((ops[u], ops[v]) for u, v in graph.edge_index.t().tolist())


class TinyResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.conv2(y) + y
        return self.fc(torch.flatten(self.pool(y), 1))


def test_hand_made_graph_has_exact_nodes_and_edges():
    graph = to_graph(TinyResBlock())
    assert graph.op_names == [
        'input', 'conv', 'bias', 'batch_norm', 'relu', 'conv', 'sum',
        'global_avg_pool', 'linear', 'bias', 'output'
    ]
    assert edges_by_op(graph) == sorted([
        ('input', 'conv'), ('conv', 'bias'), ('bias', 'batch_norm'),
        ('batch_norm', 'relu'), ('relu', 'conv'), ('conv', 'sum'),
        ('relu', 'sum'), ('sum', 'global_avg_pool'),
        ('global_avg_pool', 'linear'), ('linear', 'bias'), ('bias', 'output')
    ])
    assert graph.node_params[1] == ['conv1.weight']
    assert graph.node_params[2] == ['conv1.bias']
    assert graph.node_params[3] == ['bn1.weight', 'bn1.bias']
    assert graph.node_shape[1].tolist() == [8, 3, 3, 3]
    assert graph.node_shape[8].tolist() == [5, 8, 1, 1]
    assert graph.node_shape[0].tolist() == [0, 0, 0, 0]
    assert graph.param_shapes[3] == [(8, ), (8, )]
    assert_valid_graph(graph, TinyResBlock())


def test_conv_variants_are_distinct_ops():
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3), nn.Conv2d(8, 8, 3, groups=8),
        nn.Conv2d(8, 8, 3, groups=2), nn.Conv2d(8, 8, 3, dilation=2),
        nn.ConvTranspose2d(8, 4, 2, stride=2))
    graph = to_graph(model, input_shape=(1, 4, 32, 32))
    assert [op for op in graph.op_names if op.startswith('conv')] == [
        'conv', 'conv_grouped', 'conv_grouped', 'conv_dilated',
        'conv_transpose'
    ]


class SharedAndTied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.block = nn.Linear(6, 6)
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens):
        h = self.embed(tokens)
        h = self.block(self.block(h))  # shared module, called twice
        return self.head(h)


def test_shared_and_tied_parameters_are_owned_once():
    model = SharedAndTied()
    graph = to_graph(model, torch.zeros(2, 7, dtype=torch.long))
    assert graph.op_names.count('linear') == 3
    owners = {n: i for i, ps in enumerate(graph.node_params) for n in ps}
    assert owners['embed.weight'] == graph.op_names.index('embedding')
    assert graph.node_params[graph.op_names.index('linear')] == ['block.weight']
    assert_valid_graph(graph, model)


class WithUnused(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.spare = nn.Linear(4, 2)
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)

    def forward(self, x):
        return self.used(x)


def test_strict_conversion_names_the_module_of_an_unused_parameter():
    with pytest.raises(GraphConversionError, match="module 'spare'") as info:
        to_graph(WithUnused(), input_shape=(2, 4))
    assert 'spare.weight' in str(info.value)
    assert 'strict=False' in str(info.value)


def test_partial_graph_lists_unsupported_parameters():
    graph = to_graph(WithUnused(), input_shape=(2, 4), strict=False)
    names = [name for name, _ in graph.unsupported]
    assert names == ['spare.weight', 'spare.bias']  # frozen: not trainable
    assert all('not used' in reason for _, reason in graph.unsupported)
    assert graph.op_names == ['input', 'linear', 'bias', 'output']


class DataDependentGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        if x.mean() > 0:  # depends on values: fx cannot trace this
            return self.proj(x)
        return -self.proj(x)


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.gate = DataDependentGate()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.gate(self.inp(x))))


def test_untraceable_submodule_becomes_an_opaque_node():
    model = GatedNet()
    graph = to_graph(model, input_shape=(2, 4))
    assert [path for path, _ in graph.opaque] == ['gate']
    assert 'TraceError' in graph.opaque[0][1]
    gate = graph.node_names.index('gate')
    assert graph.op_names[gate] == 'module'
    assert graph.node_params[gate] == ['gate.proj.weight', 'gate.proj.bias']
    # The opaque node's output shape was still found: the next layer has one.
    assert graph.shape_failures == []
    assert_valid_graph(graph, model)


class DataDependentRoot(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x):
        for _ in range(int(x.sum())):
            x = self.a(x)
        return x


def test_untraceable_model_fails_with_a_clear_error():
    with pytest.raises(GraphConversionError) as info:
        to_graph(DataDependentRoot(), input_shape=(2, 4))
    message = str(info.value)
    assert 'DataDependentRoot' in message
    assert 'depends on tensor values' in message
    assert 'leaf_modules' in message


def test_shape_dependent_python_traces_with_concrete_shapes():
    class ShapeBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc3 = nn.Linear(4, 2)

        def forward(self, x):
            if x.dim() == 4 and x.shape[-1] > 8:
                x = self.conv(x)
            a, b = x.chunk(2, dim=1)
            return self.fc3(torch.cat([a, b], 1).mean((2, 3)))

    graph = to_graph(ShapeBranch(), input_shape=(1, 3, 16, 16))
    assert graph.op_names == ['input', 'conv', 'bias', 'concat',
                              'global_avg_pool', 'linear', 'bias', 'output']


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1),
                                   nn.Flatten())
        self.text = nn.Embedding(100, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, image, tokens, scale: float = 1.0):
        fused = torch.cat([self.image(image), self.text(tokens).mean(1)], -1)
        return self.head(fused) * scale


@pytest.mark.parametrize('as_dict', [False, True])
def test_multi_input_model(as_dict):
    model = TwoTower()
    image, tokens = torch.randn(2, 3, 8, 8), torch.zeros(2, 5, dtype=torch.long)
    example = {'image': image, 'tokens': tokens} if as_dict else (image, tokens)
    graph = to_graph(model, example)
    assert graph.op_names.count('input') == 2
    assert [graph.node_names[i] for i in graph.input_index] == ['image', 'tokens']
    assert graph.op_counts()['concat'] == 1
    assert_valid_graph(graph, model)


def test_example_inputs_are_checked_against_forward():
    with pytest.raises(GraphConversionError, match='takes 3'):
        to_graph(TwoTower(), (torch.randn(1, 3, 8, 8), ) * 4)
    with pytest.raises(GraphConversionError, match="needs 'tokens'"):
        to_graph(TwoTower(), (torch.randn(1, 3, 8, 8), ))
    with pytest.raises(GraphConversionError, match='not parameters'):
        to_graph(TwoTower(), {'image': torch.randn(1, 3, 8, 8), 'txt': 1})
    with pytest.raises(GraphConversionError, match='expected a torch.nn.Module'):
        to_graph(lambda x: x)


def test_audio_model_with_1d_convs():
    model = nn.Sequential(
        nn.Conv1d(1, 16, 9, stride=4), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Conv1d(16, 16, 5, groups=16), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 3, dilation=2), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Linear(32, 4))
    graph = to_graph(model, input_shape=(1, 1, 16000))
    conv = graph.op_names.index('conv')
    assert graph.node_shape[conv].tolist() == [16, 1, 9, 1]
    assert graph.op_counts()['conv_grouped'] == 1
    assert graph.op_counts()['conv_dilated'] == 1
    assert graph.op_counts()['global_avg_pool'] == 1
    assert_valid_graph(graph, model)


class AttentionBlock(nn.Module):
    """A pre-norm transformer block; attention written out by hand."""
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(),
                                 nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim, ), 0.1))

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, -1) \
            .permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(out)
        return x + self.gamma * self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 17, dim))
        self.block = AttentionBlock(dim)
        self.mha = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = self.block(x + self.pos)
        x, _ = self.mha(x, x, x)
        return self.head(x[:, 0])


def test_transformer_with_attention_tokens_and_layer_scale():
    model = TinyViT()
    graph = to_graph(model, input_shape=(2, 3, 16, 16))
    counts = graph.op_counts()
    assert counts['class_token'] == 1
    assert counts['pos_embedding'] == 1
    assert counts['layer_scale'] == 1
    assert counts['matmul'] == 2
    assert counts['softmax'] == 1
    assert counts['attention'] == 1  # nn.MultiheadAttention
    assert counts['layer_norm'] == 2
    owner = {n: graph.op_names[i] for i, ps in enumerate(graph.node_params)
             for n in ps}
    assert owner['cls_token'] == 'class_token'
    assert owner['pos'] == 'pos_embedding'
    assert owner['block.gamma'] == 'layer_scale'
    assert owner['mha.in_proj_weight'] == 'attention'
    assert owner['mha.out_proj.weight'] == 'linear'
    assert owner['mha.out_proj.bias'] == 'bias'
    assert_valid_graph(graph, model)


def test_functional_layers_own_the_parameters_they_read():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 3, 3, 3))
            self.bias = nn.Parameter(torch.zeros(6))
            self.w2 = nn.Parameter(torch.randn(4, 6))

        def forward(self, x):
            x = F.conv2d(x, self.weight, self.bias, padding=1)
            return F.linear(x.mean((2, 3)), self.w2)

    graph = to_graph(Functional(), input_shape=(1, 3, 8, 8))
    assert graph.op_names == ['input', 'conv', 'bias', 'global_avg_pool',
                              'linear', 'output']
    assert graph.node_params[1:3] == [['weight'], ['bias']]
    assert graph.node_params[4] == ['w2']


def test_parameters_computed_from_constants_travel_to_their_consumer():
    class RelativeBias(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('coords', torch.randn(5, 2))
            self.mlp = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
            self.logit_scale = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            bias = self.mlp(self.coords).view(1, 5) * self.logit_scale.exp()
            return x + bias

    model = RelativeBias()
    graph = to_graph(model, input_shape=(3, 5))
    assert graph.op_names == ['input', 'pos_embedding', 'output']
    assert sorted(graph.node_params[1]) == sorted(
        n for n, _ in model.named_parameters())
    assert_valid_graph(graph, model)


def test_conversion_computes_nothing_and_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2), nn.ReLU(),
                          nn.MaxPool2d(3, 2, ceil_mode=True),
                          nn.Conv2d(8, 8, 3), nn.AdaptiveAvgPool2d(1))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # 3 x 20000 x 20000 floats would need 4.8 GB for a real forward pass.
    graph = to_graph(model, input_shape=(1, 3, 20000, 20000))
    assert graph.op_counts()['conv'] == 2
    assert not model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(name.startswith('_tensor_constant')
                   for name, _ in model.named_buffers())


def test_too_small_input_is_reported_per_node():
    model = nn.Sequential(nn.Conv2d(3, 4, 5), nn.Conv2d(4, 4, 5))
    graph = to_graph(model, input_shape=(1, 3, 6, 6))
    failures = dict(graph.shape_failures)
    assert 'too small' in next(iter(failures.values()))


def test_training_mode_includes_auxiliary_branches():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.aux = nn.Linear(4, 2)

        def forward(self, x):
            x = self.body(x)
            return (x, self.aux(x)) if self.training else x

    model = Aux().eval()
    assert to_graph(model, input_shape=(1, 4)).op_counts()['linear'] == 2
    assert not model.training
    eval_graph = to_graph(model, input_shape=(1, 4), training=False,
                          strict=False)
    assert [n for n, _ in eval_graph.unsupported] == ['aux.weight', 'aux.bias']
    assert 'eval mode' in eval_graph.unsupported[0][1]


def test_leaf_modules_are_kept_opaque_on_request():
    model = GatedNet()
    graph = to_graph(model, input_shape=(2, 4), leaf_modules=['gate'])
    assert graph.opaque == []  # asked for, not a fallback
    assert graph.op_names == ['input', 'linear', 'bias', 'module', 'relu',
                              'linear', 'bias', 'output']
    assert graph.node_params[3] == ['gate.proj.weight', 'gate.proj.bias']


def test_meta_device_models_convert():
    with torch.device('meta'):
        model = TinyResBlock()
    graph = to_graph(model)
    assert graph.num_params == sum(p.numel() for p in model.parameters())


def test_virtual_edges_follow_the_cutoff():
    model = nn.Sequential(*[nn.Linear(4, 4, bias=False) for _ in range(10)])
    graph = to_graph(model, input_shape=(1, 4), ve_cutoff=3)
    # A chain of 12 nodes: pairs at distance 2 and 3.
    assert graph.virtual_edge_index.size(1) == 10 + 9
    assert sorted(set(graph.virtual_edge_dist.tolist())) == [2, 3]
    none = to_graph(model, input_shape=(1, 4), ve_cutoff=1)
    assert none.virtual_edge_index.size(1) == 0


def test_op_ids_index_the_vocabulary():
    graph = to_graph(TinyResBlock())
    assert isinstance(graph, ArchGraph)
    assert graph.op.dtype == torch.long
    assert int(graph.op.max()) < len(OPS)
    assert reachable_from(graph, graph.input_index.tolist()) == set(
        range(graph.num_nodes))


def test_a_forward_that_rejects_the_input_names_the_shapes():
    class FixedSize(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            assert x.shape[-1] == 4, 'wrong size'
            return self.fc(x)

    with pytest.raises(GraphConversionError) as info:
        to_graph(FixedSize(), input_shape=(1, 5))
    assert "'x': (1, 5)" in str(info.value)
    assert 'wrong size' in str(info.value)
    assert 'control flow' not in str(info.value).lower()
