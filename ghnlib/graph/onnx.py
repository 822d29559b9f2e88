r"""ONNX model → :class:`ArchGraph`, with the same op vocabulary as
:func:`ghnlib.graph.to_graph`."""
import ast
import heapq
import os
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ghnlib.errors import GraphConversionError
from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.recorder import (NO_SOURCES, GraphRecorder, Sources,
                                   merge_sources)
from ghnlib.graph.to_graph import DEFAULT_VE_CUTOFF
from ghnlib.graph.vocabulary import OP_INDEX, WEIGHT_OPS

__all__ = ['from_onnx']

# ONNX op_type → vocabulary op, for ops whose meaning needs no attributes.
_FIXED_OPS: Dict[str, str] = {
    'ConvTranspose': 'conv_transpose',
    'BatchNormalization': 'batch_norm',
    'LayerNormalization': 'layer_norm',
    'RMSNormalization': 'layer_norm',
    'SimplifiedLayerNormalization': 'layer_norm',
    'GroupNormalization': 'group_norm',
    'InstanceNormalization': 'instance_norm',
    'Relu': 'relu',
    'LeakyRelu': 'relu',
    'PRelu': 'relu',
    'Clip': 'relu',
    'ThresholdedRelu': 'relu',
    'Gelu': 'gelu',
    'Swish': 'silu',
    'Sigmoid': 'sigmoid',
    'Tanh': 'tanh',
    'HardSwish': 'hardswish',
    'HardSigmoid': 'hardsigmoid',
    'Elu': 'elu',
    'Selu': 'elu',
    'Celu': 'elu',
    'Mish': 'activation',
    'Softplus': 'activation',
    'Softsign': 'activation',
    'Softmax': 'softmax',
    'LogSoftmax': 'softmax',
    'Add': 'sum',
    'Sub': 'sum',
    'Sum': 'sum',
    'Mul': 'multiply',
    'Div': 'multiply',
    'Einsum': 'matmul',
    'Concat': 'concat',
    'MaxPool': 'max_pool',
    'AveragePool': 'avg_pool',
    'GlobalAveragePool': 'global_avg_pool',
    'GlobalMaxPool': 'global_max_pool',
    'Resize': 'upsample',
    'Upsample': 'upsample',
    'Attention': 'attention',
    'MultiHeadAttention': 'attention',
}

# Ops that only move or reinterpret data: contracted like to_graph's
# shape-only calls. (Gather joins them when it indexes activations.)
_SHAPE_ONLY_OPS = frozenset({
    'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity',
    'Dropout', 'Cast', 'CastLike', 'Slice', 'Split', 'Expand', 'Pad', 'Tile',
    'DepthToSpace', 'SpaceToDepth',
})

# Ops whose outputs depend on shapes or nothing at all, never on values.
_NON_DATA_OPS = frozenset({
    'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'EyeLike',
    'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike',
})

# Inputs that carry data (the rest are shapes, axes, bounds or running
# statistics); ops not listed take data on every input.
_DATA_INPUTS: Dict[str, Tuple[int, ...]] = {
    **{op: (0, ) for op in (
        'Reshape', 'Expand', 'Tile', 'Slice', 'Pad', 'Squeeze', 'Unsqueeze',
        'Split', 'Resize', 'Upsample', 'CastLike', 'Clip', 'Dropout', 'TopK',
        'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceProd',
        'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp',
        'ReduceSumSquare', 'Trilu', 'CumSum')},
    'BatchNormalization': (0, 1, 2),
}

# Position of the bias input of weight layers: it gets a 'bias' node.
_BIAS_AT = {'Conv': 2, 'ConvTranspose': 2, 'Gemm': 2}

# A learned tensor meeting activations in one of these ops renames the op.
_PARAMETRISED_OPS = {
    'sum': 'pos_embedding',
    'concat': 'class_token',
    'multiply': 'layer_scale',
}

# Arithmetic with this constant is an identity: exporters emit it when
# decomposing activations (ELU's scales), so it is contracted.
_NEUTRAL_OPERAND = {'Mul': 1.0, 'Div': 1.0, 'Add': 0.0, 'Sub': 0.0}
_OPERAND_MAY_LEAD = {'Mul', 'Add'}  # commutative: the constant may come first

_PARAMETER_KIND_KEY = 'pkg.torch.export.graph_signature.InputSpec.kind'
_NAME_SCOPES_KEY = 'pkg.torch.onnx.name_scopes'
_CONSTANT_LIMIT = 4096  # elements kept when folding small constants


def _attributes(node) -> Dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _metadata(proto) -> Dict[str, str]:
    return {entry.key: entry.value for entry in proto.metadata_props}


def _load(model: Any):
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model, '<ModelProto>'
    if not isinstance(model, (str, os.PathLike)):
        raise GraphConversionError(
            '', f'expected a path or an onnx.ModelProto, got '
            f'{type(model).__name__}; for a torch.nn.Module use '
            'ghnlib.graph.to_graph')
    where = os.fspath(model)
    try:
        # Weights are not needed: initializer shapes live in the header.
        proto = onnx.load(where, load_external_data=False)
    except Exception as error:
        raise GraphConversionError(
            '', f"'{where}' is not a readable ONNX model "
            f'({type(error).__name__}: {error})') from error
    if not proto.graph.node or not proto.graph.output:
        raise GraphConversionError(
            '', f"'{where}' is not a readable ONNX model (no graph nodes or "
            'outputs)')
    return proto, where


def _topological_order(graph, available: Set[str], where: str) -> List[Any]:
    nodes = list(graph.node)
    produced = set(available)
    in_order = True
    for node in nodes:
        if any(name and name not in produced for name in node.input):
            in_order = False
            break
        produced.update(node.output)
    if in_order:
        return nodes

    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    waiting = [0] * len(nodes)
    users: List[List[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        for name in dict.fromkeys(n for n in node.input if n and n not in available):
            if name not in producer:
                raise GraphConversionError(
                    '', f"{where}: node '{node.name or node.op_type}' reads "
                    f"'{name}', which no node, input or initializer defines")
            waiting[i] += 1
            users[producer[name]].append(i)
    # Smallest index first, so a nearly sorted graph keeps its order.
    ready = [i for i in range(len(nodes)) if waiting[i] == 0]
    order: List[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in users[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < len(nodes):
        raise GraphConversionError('', f'{where}: the graph has a cycle')
    return [nodes[i] for i in order]


class _Shapes:
    """Static shapes of ONNX values, from value_info (inferred on demand)."""
    def __init__(self, proto):
        self.proto = proto
        self.shapes: Dict[str, List[Optional[int]]] = {}
        self.inferred = False
        self.read(proto.graph)

    def read(self, graph) -> None:
        for info in list(graph.input) + list(graph.value_info) + list(graph.output):
            tensor_type = info.type.tensor_type
            if tensor_type.HasField('shape'):
                self.shapes[info.name] = [
                    d.dim_value if d.HasField('dim_value') else None
                    for d in tensor_type.shape.dim]

    def get(self, name: str) -> Optional[List[Optional[int]]]:
        if name not in self.shapes and not self.inferred:
            self.inferred = True
            try:
                from onnx import shape_inference
                self.read(shape_inference.infer_shapes(self.proto).graph)
            except Exception:
                pass  # Shapes stay unknown; callers fall back.
        return self.shapes.get(name)


class _Builder(GraphRecorder):
    def __init__(self, proto):
        super().__init__()
        from onnx import numpy_helper
        self.numpy_helper = numpy_helper
        self.proto = proto
        graph = proto.graph
        self.shapes = _Shapes(proto)
        self.param_shapes: Dict[str, Tuple[int, ...]] = {}
        self.declared_params: Set[str] = set()
        self.constants: Dict[str, np.ndarray] = {}
        self.refs: Dict[str, Sources] = {}

        kinds = {info.name: _metadata(info).get(_PARAMETER_KIND_KEY)
                 for info in list(graph.value_info) + list(graph.input)}
        for init in graph.initializer:
            self.add_initializer(init, tuple(init.dims), kinds.get(init.name))
        for sparse in graph.sparse_initializer:
            self.add_initializer(sparse.values, tuple(sparse.dims),
                                 kinds.get(sparse.values.name))
        self.initializers = ({i.name for i in graph.initializer}
                             | {s.values.name for s in graph.sparse_initializer})

        self.awaiting_bias: Set[int] = set()
        # Instance norms with a constant scale, waiting for the learned
        # affine (Mul, then Add) that torch's group_norm export appends.
        self.awaiting_affine: Dict[int, str] = {}
        self.fused_sigmoids: Set[int] = set()
        self.silu_products: Set[int] = set()

    def add_initializer(self, tensor, dims: Tuple[int, ...],
                        kind: Optional[str]) -> None:
        from onnx import TensorProto
        name = tensor.name
        is_float = tensor.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                        TensorProto.FLOAT16,
                                        TensorProto.BFLOAT16)
        numel = int(np.prod(dims)) if dims else 1
        if kind is not None:
            is_param = kind == 'PARAMETER'
            if is_param:
                self.declared_params.add(name)
        else:
            # No exporter metadata: a float tensor that is not a scalar is
            # taken for a weight when it reaches a data input of an op.
            is_param = is_float and numel > 1
        if is_param:
            self.param_shapes[name] = dims
            self.refs[name] = Sources((), (name, ))
        elif (numel <= _CONSTANT_LIMIT
              and tensor.data_location != TensorProto.EXTERNAL):
            try:
                self.constants[name] = self.numpy_helper.to_array(tensor)
            except (ValueError, TypeError, KeyError):
                pass  # An unusual encoding: the value stays unknown.

    def ref(self, name: str) -> Sources:
        return self.refs.get(name, NO_SOURCES) if name else NO_SOURCES

    def data_inputs(self, node) -> List[str]:
        positions = _DATA_INPUTS.get(node.op_type)
        names = list(node.input)
        if positions is not None:
            names = [names[i] for i in positions if i < len(names)]
        return [n for n in names if n]

    # -- small constant folding, enough for axes and neutral operands ---------

    def fold_constant(self, node) -> None:
        """Records the value of :obj:`node`'s output when it is a small
        constant the ops below can compute."""
        op = node.op_type
        if op == 'Constant':
            value = self.constant_attribute(node)
        else:
            needed = {'Identity': 1, 'Cast': 1, 'CastLike': 1, 'Reshape': 2,
                      'Expand': 2, 'Concat': len(node.input)}.get(op)
            inputs = [self.constants.get(n) for n in node.input[:needed or 0]]
            if not needed or len(inputs) < needed or any(v is None for v in inputs):
                return
            try:
                value = self.evaluate(node, inputs)
            except (ValueError, TypeError, IndexError):
                return
        if value is not None and value.size <= _CONSTANT_LIMIT and node.output:
            self.constants[node.output[0]] = np.asarray(value)

    @staticmethod
    def evaluate(node, inputs: List[np.ndarray]) -> np.ndarray:
        op = node.op_type
        if op == 'Reshape':
            data, shape = inputs[0], [int(s) for s in inputs[1].reshape(-1)]
            # ONNX Reshape: a 0 copies the input's dimension.
            return data.reshape([data.shape[i] if s == 0 else s
                                 for i, s in enumerate(shape)])
        if op == 'Expand':
            shape = np.broadcast_shapes(inputs[0].shape,
                                        tuple(inputs[1].reshape(-1)))
            return np.broadcast_to(inputs[0], shape)
        if op == 'Concat':
            return np.concatenate(inputs, axis=_attributes(node).get('axis', 0))
        return inputs[0]  # Identity and casts: the value is what matters.

    def constant_attribute(self, node) -> Optional[np.ndarray]:
        for key, value in _attributes(node).items():
            if key == 'value':
                if int(np.prod(value.dims)) > _CONSTANT_LIMIT:
                    return None
                return self.numpy_helper.to_array(value)
            if key in ('value_float', 'value_int', 'value_floats', 'value_ints'):
                return np.asarray(value)
        return None

    # -- op resolution --------------------------------------------------------

    def reduce_op(self, node, global_op: str, other_op: str) -> str:
        attributes = _attributes(node)
        if 'axes' in attributes:
            axes = attributes['axes']
        elif len(node.input) > 1 and node.input[1]:
            axes = self.constants.get(node.input[1])
            if axes is None:
                return other_op
            axes = axes.reshape(-1).tolist()
        else:
            return other_op  # Over every axis, batch and channels included.
        shape = self.shapes.get(node.input[0])
        # As in to_graph, only 4-D and larger inputs are unambiguously
        # (N, C, spatial...).
        if shape is None or len(shape) < 4:
            return other_op
        rank = len(shape)
        axes = {int(a) % rank for a in axes}
        spatial = set(range(2, rank))
        # Unit axes need not be reduced: 1-D pools export as an Unsqueeze
        # followed by a reduction over the last axis only.
        unreduced = spatial - axes
        if axes <= spatial and all(shape[a] == 1 for a in unreduced):
            return global_op
        return other_op

    def resolve_op(self, node, ref: Sources) -> Optional[str]:
        """The vocabulary op of :obj:`node`, or ``None`` to contract it."""
        op_type = node.op_type
        if op_type == 'Conv':
            attributes = _attributes(node)
            if attributes.get('group', 1) > 1:
                return 'conv_grouped'
            if any(d > 1 for d in attributes.get('dilations', ())):
                return 'conv_dilated'
            return 'conv'
        if op_type in ('MatMul', 'Gemm'):
            return 'linear' if ref.params else 'matmul'
        if op_type == 'Gather':
            return 'embedding' if ref.params else None
        if op_type == 'ReduceMean':
            return self.reduce_op(node, 'global_avg_pool', 'mean')
        if op_type == 'ReduceMax':
            return self.reduce_op(node, 'global_max_pool', 'generic')
        if op_type in _NEUTRAL_OPERAND and not ref.params:
            neutral = _NEUTRAL_OPERAND[op_type]
            operands = list(node.input[1:2])
            if op_type in _OPERAND_MAY_LEAD:
                operands.append(node.input[0])
            for name in operands:
                value = self.constants.get(name)
                if value is not None and value.size and np.all(value == neutral):
                    return None
        if op_type in _SHAPE_ONLY_OPS:
            return None
        return _FIXED_OPS.get(op_type, 'generic')

    def node_name(self, node) -> str:
        scopes = _metadata(node).get(_NAME_SCOPES_KEY)
        if scopes:
            try:
                scopes = ast.literal_eval(scopes)
            except (ValueError, SyntaxError):
                scopes = None
            # [..., module path, op]: name nodes by module path, as to_graph.
            if isinstance(scopes, list) and len(scopes) > 2 and scopes[-2]:
                return str(scopes[-2])
        label = node.name or (node.output[0] if node.output else '')
        return f'{label} ({node.op_type})'

    def find_silu(self, nodes: Sequence[Any]) -> None:
        """Marks ``x * sigmoid(x)`` pairs, the form SiLU is exported in."""
        consumers: Dict[str, List[int]] = {}
        for i, node in enumerate(nodes):
            for name in node.input:
                consumers.setdefault(name, []).append(i)
        outputs = {o.name for o in self.proto.graph.output}
        for i, node in enumerate(nodes):
            if node.op_type != 'Sigmoid' or node.output[0] in outputs:
                continue
            users = consumers.get(node.output[0], [])
            if len(users) != 1:
                continue
            product = nodes[users[0]]
            operands = sorted([node.input[0], node.output[0]])
            if product.op_type == 'Mul' and sorted(product.input) == operands:
                self.fused_sigmoids.add(i)
                self.silu_products.add(users[0])

    # -- traversal ------------------------------------------------------------

    def visit(self, position: int, node) -> None:
        op_type = node.op_type
        self.fold_constant(node)
        if op_type in _NON_DATA_OPS:
            return  # Outputs stay unreferenced: shapes, not data flow.
        inputs = self.data_inputs(node)
        ref = merge_sources(self.ref(n) for n in inputs)
        self.reached.update(ref.params)
        if not ref.nodes or position in self.fused_sigmoids:
            # Computations on initializers alone parametrise those
            # initializers; their parameters travel on to the op that meets
            # data, as in to_graph.
            self.set_outputs(node, ref)
            return
        op = 'silu' if position in self.silu_products else self.resolve_op(node, ref)
        if op is None:
            self.set_outputs(node, ref)
            return

        params = ref.params
        bias: Tuple[str, ...] = ()
        if op_type in _BIAS_AT and params and len(node.input) > _BIAS_AT[op_type]:
            bias = self.ref(node.input[_BIAS_AT[op_type]]).params
            params = tuple(p for p in params if p not in bias)
        elif params and len(ref.nodes) == 1:
            completed = self.complete(op_type, ref.nodes[0], params)
            if completed is not None:
                self.set_outputs(node, Sources((completed, )))
                return
        if params and not bias:
            op = _PARAMETRISED_OPS.get(op, op)

        name = self.node_name(node)
        index = self.add_node(op, name, ref.nodes, params)
        if op == 'instance_norm' and not params:
            self.awaiting_affine[index] = 'scale'
        if bias:
            index = self.add_node('bias', name, (index, ), bias)
        elif op in WEIGHT_OPS:
            self.awaiting_bias.add(index)
        self.set_outputs(node, Sources((index, )))

    def complete(self, op_type: str, source: int,
                 params: Sequence[str]) -> Optional[int]:
        """Gives :obj:`params` to the node :obj:`source` when they complete
        it: the bias added after a MatMul (or bias-free conv), or the affine
        of a group norm, which torch exports as an instance norm with a
        constant scale followed by a learned ``Mul`` and ``Add``.

        Returns:
            The node the op's output now comes from, or :obj:`None`.
        """
        if op_type == 'Add' and source in self.awaiting_bias:
            self.awaiting_bias.discard(source)
            return self.add_node('bias', self.names[source], (source, ), params)
        state = self.awaiting_affine.get(source)
        if (op_type, state) in (('Mul', 'scale'), ('Add', 'scale'),
                                ('Add', 'shift')):
            self.absorb(source, params)
            self.ops[source] = OP_INDEX['group_norm']
            if op_type == 'Mul':
                self.awaiting_affine[source] = 'shift'
            else:
                del self.awaiting_affine[source]
            return source
        return None

    def set_outputs(self, node, ref: Sources) -> None:
        for name in node.output:
            if name:
                self.refs[name] = ref


def from_onnx(model: Union[str, os.PathLike, Any], *, strict: bool = True,
              ve_cutoff: int = DEFAULT_VE_CUTOFF) -> ArchGraph:
    r"""Converts an ONNX model into its computational graph.

    The graph has the nodes :func:`ghnlib.graph.to_graph` would build for the
    same architecture: ONNX ops map to the op vocabulary
    (:obj:`ghnlib.graph.OPS`) through an explicit table, shape-only ops
    (``Reshape``, ``Transpose``, ``Cast``, ``Slice``, …) are contracted, a
    weight layer's bias becomes a ``'bias'`` node after it, and every
    parameter is owned by exactly one node. Parameters are the initializers
    that feed weights, biases and other learned tensors (not shape constants
    or batch-norm running statistics), named by their initializer names.

    For a faithful graph, export PyTorch models with
    ``torch.onnx.export(model.eval(), args, path, dynamo=True,
    optimize=False)``: the optimizer folds batch norms into convolutions and
    renames transposed weights. Below opset 23, which has an ``Attention``
    op, exporters decompose attention into its matmuls and softmax.
    Parameters are told apart from buffers by the exporter's metadata;
    without it, floating-point initializers with more than one element that
    reach a data input are taken for parameters.

    Args:
        model (str or os.PathLike or onnx.ModelProto): The ONNX file or the
            loaded model.
        strict (bool, optional): Raise :class:`GraphConversionError` if any
            parameter cannot be placed; otherwise return the partial graph
            with :attr:`ArchGraph.unsupported` filled in.
            (default: :obj:`True`)
        ve_cutoff (int, optional): Longest shortest path :math:`s_{\max}`
            kept as a virtual edge; values below 2 disable virtual edges.
            (default: :obj:`50`)

    Returns:
        :class:`ArchGraph`

    Raises:
        ImportError: If the ``onnx`` package is not installed.
        GraphConversionError: If the file cannot be read as an ONNX model,
            the graph is malformed, or (with :obj:`strict`) a parameter
            cannot be placed.
    """
    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise ImportError("from_onnx needs the 'onnx' package: "
                          'pip install onnx') from error

    proto, where = _load(model)
    if proto.functions:
        from onnx import inliner
        proto = inliner.inline_local_functions(proto)
    graph = proto.graph
    builder = _Builder(proto)

    for info in graph.input:
        if info.name in builder.initializers:
            continue  # Old opsets list initializers among the inputs.
        index = builder.add_node('input', info.name, (), ())
        builder.inputs.append(index)
        builder.refs[info.name] = Sources((index, ))

    available = {info.name for info in graph.input} | builder.initializers
    nodes = _topological_order(graph, available, where)
    builder.find_silu(nodes)
    for position, node in enumerate(nodes):
        builder.visit(position, node)

    ref = merge_sources(builder.ref(info.name) for info in graph.output)
    builder.reached.update(ref.params)
    builder.output = builder.add_node('output', 'output', ref.nodes, ref.params)

    unsupported = []
    for name in builder.param_shapes:
        reason = builder.unplaced_reason(name)
        if reason == 'not used':
            if name not in builder.declared_params:
                continue  # A constant that never reaches data, not a weight.
            reason = 'not used by the ONNX graph'
        if reason is not None:
            unsupported.append((name, reason))
    if unsupported and strict:
        name, reason = unsupported[0]
        more = f' (and {len(unsupported) - 1} more)' if len(unsupported) > 1 else ''
        raise GraphConversionError(
            '', f"{where}: initializer '{name}' {reason}{more}; pass "
            'strict=False to get the partial graph with graph.unsupported '
            'listing them')
    return builder.to_arch_graph(builder.param_shapes, ve_cutoff, unsupported,
                                 frontend='onnx')
