r"""Neuron-wise tokens of a network's weights, laid out by its computational
graph."""
import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph, to_graph
from ghnlib.graph.vocabulary import CHANNELWISE_OPS, WEIGHT_OPS

__all__ = ['TokenLayer', 'WeightTokenizer']

#: Graph ops whose weight has one row per output neuron / channel (a
#: transposed convolution's weight is laid out input channel first).
ROW_PER_OUTPUT_OPS = WEIGHT_OPS - {'conv_transpose'}


@dataclasses.dataclass(frozen=True)
class TokenLayer:
    r"""A conv or linear layer as the tokenizer sees it: its weight and bias
    parameter names (as in ``model.named_parameters()``), the weight shape
    :math:`(O, \ldots)` and the graph op.

    Its :math:`O` tokens hold, for output neuron / channel :math:`o`, the
    row ``weight[o].flatten()`` followed by ``bias[o]``.
    """
    weight: str
    bias: Optional[str]
    shape: Tuple[int, ...]
    op: str

    @property
    def num_tokens(self) -> int:
        return self.shape[0]

    @property
    def fan_in(self) -> int:
        return math.prod(self.shape[1:])

    @property
    def width(self) -> int:
        """Entries of one token of this layer (incoming weights and bias)."""
        return self.fan_in + (self.bias is not None)

    def to_dict(self) -> dict:
        return dict(weight=self.weight, bias=self.bias, shape=list(self.shape),
                    op=self.op)

    @classmethod
    def from_dict(cls, entry: dict) -> 'TokenLayer':
        return cls(str(entry['weight']),
                   None if entry['bias'] is None else str(entry['bias']),
                   tuple(int(s) for s in entry['shape']), str(entry['op']))


def _topological_order(graph: ArchGraph) -> List[int]:
    num_nodes = int(graph.num_nodes)
    successors: List[List[int]] = [[] for _ in range(num_nodes)]
    indegree = [0] * num_nodes
    for source, target in graph.edge_index.t().tolist():
        successors[source].append(target)
        indegree[target] += 1
    ready = sorted(i for i in range(num_nodes) if indegree[i] == 0)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for target in successors[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
        ready.sort()
    return order


def _successors(graph: ArchGraph) -> List[List[int]]:
    successors: List[List[int]] = [[] for _ in range(int(graph.num_nodes))]
    for source, target in graph.edge_index.t().tolist():
        successors[source].append(target)
    return successors


def _layers_from_graph(graph: ArchGraph) -> Tuple[List[TokenLayer],
                                                   List[int]]:
    ops = graph.op_names
    successors = _successors(graph)
    owned_bias = {}
    layers, nodes = [], []
    for node in _topological_order(graph):
        if ops[node] not in ROW_PER_OUTPUT_OPS:
            continue
        names = list(graph.node_params[node])
        shapes = [tuple(int(s) for s in shape)
                  for shape in graph.param_shapes[node]]
        weights = [(n, s) for n, s in zip(names, shapes) if len(s) >= 2]
        biases = [n for n, s in zip(names, shapes) if len(s) == 1]
        if len(weights) != 1:
            raise GhnlibError(
                f"the {ops[node]} node '{graph.node_names[node]}' owns "
                f'{names}, expected one weight of two or more dimensions; '
                'hyper-representations tokenise plain conv and linear layers')
        weight, shape = weights[0]
        bias = biases[0] if biases else None
        if bias is None:
            # The graph gives a layer's bias its own node right after it.
            for target in successors[node]:
                if ops[target] == 'bias' and len(graph.node_params[target]) \
                        == 1 and tuple(graph.param_shapes[target][0]) == \
                        (shape[0], ):
                    bias = graph.node_params[target][0]
                    owned_bias[target] = node
                    break
        layers.append(TokenLayer(weight, bias, shape, ops[node]))
        nodes.append(node)
    placed = set(nodes) | set(owned_bias)
    for node, params in enumerate(graph.node_params):
        if params and node not in placed:
            raise GhnlibError(
                f"parameters {list(params)} belong to a '{ops[node]}' node "
                f"('{graph.node_names[node]}'), which hyper-representations "
                'cannot tokenise: they cover conv and linear layers and their '
                'biases only; use an architecture without it')
    if not layers:
        raise GhnlibError('the model has no conv or linear layer to tokenise')
    return layers, nodes


def _is_permutable_chain(graph: ArchGraph, layers: List[TokenLayer],
                         nodes: List[int]) -> bool:
    r"""Whether permuting the neurons of every hidden layer (and the inputs
    of the next one) leaves the network's function unchanged: the layers
    form a chain joined only by channel-wise ops, without grouped
    convolutions."""
    if any(layer.op == 'conv_grouped' for layer in layers):
        return False
    ops = graph.op_names
    successors = _successors(graph)
    weight_nodes = set(nodes)
    for k in range(len(nodes) - 1):
        reached, frontier, seen = set(), [nodes[k]], {nodes[k]}
        while frontier:
            for target in successors[frontier.pop()]:
                if target in seen:
                    continue
                seen.add(target)
                if target in weight_nodes:
                    reached.add(target)
                elif ops[target] in CHANNELWISE_OPS:
                    frontier.append(target)
                else:
                    return False
        if reached != {nodes[k + 1]}:
            return False
        # The next layer's inputs must come in one block per channel.
        if layers[k + 1].fan_in % layers[k].num_tokens != 0:
            return False
    return True


class WeightTokenizer:
    r"""Turns a network's weights into a sequence of tokens, one per neuron
    (linear layers) or output channel (convolutions), as in the
    `"Hyper-Representations as Generative Models: Sampling Unseen Neural
    Network Weights" <https://arxiv.org/abs/2209.14733>`_ paper.

    The token of output unit :math:`o` of layer :math:`\ell` holds its
    incoming weights and its bias, zero-padded to the common width
    :math:`W = \max_\ell (\mathrm{fan\_in}_\ell + 1)`:

    .. math::
        \mathbf{t}_{\ell, o} = \left[\mathrm{vec}(\mathbf{W}^{(\ell)}_{o}),
        b^{(\ell)}_o, 0, \ldots, 0\right] \in \mathbb{R}^{W},

    with a mask marking the real entries, and positional information: the
    layer index :math:`\ell` and the position :math:`o` within the layer.
    Layers come in data-flow order of the computational graph
    (:func:`~ghnlib.graph.to_graph`), so the mapping between tokens and
    parameter names never depends on the order modules were defined in or
    on state-dict key order.

    Args:
        layers (Sequence[TokenLayer]): The layers, in data-flow order.
        permutable (bool, optional): Whether the layers form a chain whose
            hidden neurons may be permuted without changing the function
            (:meth:`permute`). (default: :obj:`False`)

    Shapes:
        - **tokens:** :math:`[T, W]` with :math:`T = \sum_\ell O_\ell`
        - **mask:** :math:`[T, W]`, boolean
        - **layer_index, position:** :math:`[T]`
    """
    def __init__(self, layers: Sequence[TokenLayer], permutable: bool = False):
        self.layers = list(layers)
        if not self.layers:
            raise GhnlibError('a WeightTokenizer needs at least one layer')
        self.permutable = bool(permutable)
        self.width = max(layer.width for layer in self.layers)
        self.num_tokens = sum(layer.num_tokens for layer in self.layers)
        self.layer_index = torch.cat([
            torch.full((layer.num_tokens, ), index, dtype=torch.long)
            for index, layer in enumerate(self.layers)])
        self.position = torch.cat([torch.arange(layer.num_tokens)
                                   for layer in self.layers])
        self.mask = torch.zeros(self.num_tokens, self.width, dtype=torch.bool)
        start = 0
        for layer in self.layers:
            self.mask[start:start + layer.num_tokens, :layer.width] = True
            start += layer.num_tokens

    @classmethod
    def from_graph(cls, graph: ArchGraph) -> 'WeightTokenizer':
        """The tokenizer of the architecture :obj:`graph` describes."""
        layers, nodes = _layers_from_graph(graph)
        return cls(layers, _is_permutable_chain(graph, layers, nodes))

    @classmethod
    def from_model(cls, model: nn.Module,
                   input_shape: Sequence[int] = (1, 3, 32, 32)
                   ) -> 'WeightTokenizer':
        """The tokenizer of :obj:`model`, read from its computational graph.

        Args:
            model (nn.Module): The network.
            input_shape (Sequence[int], optional): Example input for the
                graph conversion. (default: :obj:`(1, 3, 32, 32)`)
        """
        return cls.from_graph(to_graph(model, input_shape=tuple(input_shape)))

    # -- layout ------------------------------------------------------------
    @property
    def parameter_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Every tokenised parameter name and its shape, in token order."""
        shapes = {}
        for layer in self.layers:
            shapes[layer.weight] = layer.shape
            if layer.bias is not None:
                shapes[layer.bias] = (layer.shape[0], )
        return shapes

    @property
    def num_parameters(self) -> int:
        return int(self.mask.sum())

    def describe_mismatch(self, other: 'WeightTokenizer') -> Optional[str]:
        """What differs between this layout and :obj:`other`'s, or
        :obj:`None` when they are the same."""
        mine, theirs = self.parameter_shapes, other.parameter_shapes
        missing = [n for n in mine if n not in theirs]
        extra = [n for n in theirs if n not in mine]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f'lacks {missing}')
            if extra:
                parts.append(f'has extra {extra}')
            return ' and '.join(parts)
        for name, shape in mine.items():
            if tuple(theirs[name]) != tuple(shape):
                return (f"parameter '{name}' has shape {tuple(theirs[name])}"
                        f', expected {tuple(shape)}')
        if [layer.weight for layer in self.layers] != \
                [layer.weight for layer in other.layers]:
            return ('its layers run in another order: '
                    f'{[layer.weight for layer in other.layers]}, expected '
                    f'{[layer.weight for layer in self.layers]}')
        return None

    # -- tokens ------------------------------------------------------------
    def tokenize(self, state_dict: Dict[str, Tensor]
                 ) -> Tuple[Tensor, Tensor]:
        r"""The tokens of :obj:`state_dict` and their mask.

        Args:
            state_dict (Dict[str, Tensor]): Holds every tokenised parameter
                (other entries, *e.g.*, buffers, are ignored).

        Returns:
            :obj:`(tokens, mask)` of shape :math:`[T, W]`.
        """
        missing = [n for n in self.parameter_shapes if n not in state_dict]
        if missing:
            raise GhnlibError(f'the state dict lacks {missing}; pass the '
                              "weights of the tokenizer's architecture")
        reference = state_dict[self.layers[0].weight]
        tokens = torch.zeros(self.num_tokens, self.width,
                             dtype=reference.dtype, device=reference.device)
        start = 0
        for layer in self.layers:
            weight = state_dict[layer.weight]
            if tuple(weight.shape) != layer.shape:
                raise GhnlibError(
                    f"'{layer.weight}' has shape {tuple(weight.shape)}, "
                    f'expected {layer.shape}; pass weights of the same '
                    'architecture')
            rows = slice(start, start + layer.num_tokens)
            tokens[rows, :layer.fan_in] = weight.detach().reshape(
                layer.num_tokens, -1)
            if layer.bias is not None:
                tokens[rows, layer.fan_in] = state_dict[layer.bias].detach()
            start += layer.num_tokens
        return tokens, self.mask.to(tokens.device)

    def detokenize(self, tokens: Tensor) -> Dict[str, Tensor]:
        r"""The parameters the tokens hold, by name (padding is ignored).

        Args:
            tokens (Tensor): Shape :math:`[T, W]`.
        """
        if tokens.dim() != 2 or tuple(tokens.shape) != (self.num_tokens,
                                                        self.width):
            raise GhnlibError(
                f'tokens have shape {tuple(tokens.shape)}, expected '
                f'({self.num_tokens}, {self.width}) for this architecture')
        state, start = {}, 0
        for layer in self.layers:
            rows = tokens[start:start + layer.num_tokens]
            state[layer.weight] = rows[:, :layer.fan_in].reshape(
                layer.shape).clone()
            if layer.bias is not None:
                state[layer.bias] = rows[:, layer.fan_in].clone()
            start += layer.num_tokens
        return state

    def permute(self, tokens: Tensor,
                generator: Optional[torch.Generator] = None) -> Tensor:
        r"""The tokens of an equivalent network: the neurons of every hidden
        layer in a random order, the inputs of the next layer permuted to
        match, so the network computes the same function (the permutation
        augmentation of hyper-representations).

        Args:
            tokens (Tensor): Shape :math:`[T, W]` or :math:`[B, T, W]` (each
                network gets its own permutation).
            generator (torch.Generator, optional): (default: :obj:`None`)
        """
        if not self.permutable:
            raise GhnlibError(
                'this architecture is not a chain of conv/linear layers '
                'joined by channel-wise ops, so permuting its neurons would '
                'change its function; train without permutation augmentation')
        batched = tokens.dim() == 3
        batch = tokens if batched else tokens.unsqueeze(0)
        rows = torch.empty(batch.size(0), self.num_tokens, dtype=torch.long)
        columns = torch.empty(batch.size(0), self.num_tokens, self.width,
                              dtype=torch.long)
        for b in range(batch.size(0)):
            rows[b], columns[b] = self._permutation(generator)
        rows, columns = rows.to(tokens.device), columns.to(tokens.device)
        out = batch.gather(-1, columns)
        out = out.gather(1, rows.unsqueeze(-1).expand_as(out))
        return out if batched else out.squeeze(0)

    def _permutation(self, generator: Optional[torch.Generator]
                     ) -> Tuple[Tensor, Tensor]:
        rows = torch.arange(self.num_tokens)
        columns = torch.arange(self.width).repeat(self.num_tokens, 1)
        starts = [0]
        for layer in self.layers:
            starts.append(starts[-1] + layer.num_tokens)
        for k in range(len(self.layers) - 1):
            size = self.layers[k].num_tokens
            order = torch.randperm(size, generator=generator)
            rows[starts[k]:starts[k + 1]] = starts[k] + order
            # Inputs of the next layer come in blocks, one per channel
            # (kernel positions, or flattened spatial positions).
            following = self.layers[k + 1]
            block = following.fan_in // size
            inputs = (order.unsqueeze(1) * block +
                      torch.arange(block)).reshape(-1)
            columns[starts[k + 1]:starts[k + 2], :following.fan_in] = inputs
        return rows, columns

    # -- files -------------------------------------------------------------
    def to_dict(self) -> dict:
        return dict(layers=[layer.to_dict() for layer in self.layers],
                    permutable=self.permutable)

    @classmethod
    def from_dict(cls, config: dict) -> 'WeightTokenizer':
        return cls([TokenLayer.from_dict(e) for e in config['layers']],
                   bool(config['permutable']))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(layers={len(self.layers)}, '
                f'tokens={self.num_tokens}, width={self.width})')
