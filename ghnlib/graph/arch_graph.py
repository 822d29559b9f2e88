r"""The computational graph of an architecture, as a PyG :class:`Data`."""
import os
from collections import Counter
from typing import Any, Dict, List, Union

import torch
from torch_geometric.data import Data

from ghnlib.errors import GhnlibError
from ghnlib.graph.vocabulary import OPS, VOCABULARY_VERSION
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['ArchGraph']

_FORMAT_VERSION = 1


class ArchGraph(Data):
    r"""The computational graph of one architecture (GHN-2 style).

    Nodes are the ops of the forward pass: layers with parameters, pointwise
    ops, pooling, sums, concatenations, inputs and the output. Edges follow
    data flow. Virtual edges connect every pair of nodes whose shortest
    forward path has length :math:`2 \leq s_{uv} \leq s_{\max}`, so messages
    can skip ahead in deep graphs:

    .. math::
        \mathcal{E}_{\mathrm{virtual}} = \{(u, v) : 1 < s_{uv} \leq
        s_{\max}\}

    Build one with :func:`ghnlib.graph.to_graph` or
    :func:`ghnlib.graph.from_onnx`; batch many with
    :class:`torch_geometric.data.Batch` (all ``*_index`` attributes are
    offset correctly).

    Attributes:
        op (LongTensor): Op id of every node, an index into
            :obj:`ghnlib.graph.OPS`. Shape :math:`[N]`.
        node_shape (LongTensor): Shape of each node's first parameter,
            padded with ones (trailing dimensions of 5-D and larger tensors
            are merged); zeros for nodes without parameters.
            Shape :math:`[N, 4]`.
        edge_index (LongTensor): Data-flow edges. Shape :math:`[2, E]`.
        virtual_edge_index (LongTensor): Virtual edges. Shape :math:`[2, V]`.
        virtual_edge_dist (LongTensor): Their shortest-path lengths
            :math:`s_{uv}`. Shape :math:`[V]`.
        input_index (LongTensor): The input nodes.
        output_index (LongTensor): The output node.
        node_names (List[str]): A readable name per node (module path or
            traced op).
        node_params (List[List[str]]): Full names (as in
            ``model.named_parameters()``) of the parameters each node owns.
        param_shapes (List[List[Tuple[int, ...]]]): Their shapes.
        unsupported (List[Tuple[str, str]]): Parameters the graph could not
            place, with the reason.
        opaque (List[Tuple[str, str]]): Submodules kept as one opaque node
            because they could not be traced into, with the reason.
        frontend (str): What read the model: ``'torch.fx'``,
            ``'torch.export (torch.fx failed: …)'`` or ``'onnx'``.
        vocabulary_version (int): Version of the op vocabulary.
    """
    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key in ('edge_index', 'virtual_edge_index', 'input_index',
                   'output_index'):
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key in ('edge_index', 'virtual_edge_index'):
            return -1
        return super().__cat_dim__(key, value, *args, **kwargs)

    @property
    def op_names(self) -> List[str]:
        """The op name of every node."""
        return [OPS[i] for i in self.op.tolist()]

    def op_counts(self) -> Dict[str, int]:
        """How many nodes of each op the graph has."""
        return dict(Counter(self.op_names))

    @property
    def num_params(self) -> int:
        """Number of parameter elements the graph maps to nodes."""
        total = 0
        for shapes in self.param_shapes:
            for shape in shapes:
                total += int(torch.Size(shape).numel())
        return total

    def summary(self) -> str:
        """A short human-readable report of the graph."""
        counts = sorted(self.op_counts().items(), key=lambda kv: (-kv[1], kv[0]))
        mapped = sum(len(p) for p in self.node_params)
        lines = [
            f'{self.num_nodes} nodes, {self.edge_index.size(1)} edges, '
            f'{self.virtual_edge_index.size(1)} virtual edges',
            'nodes by op: ' + ', '.join(f'{op} {n}' for op, n in counts),
            f'parameters mapped: {mapped} tensors, {self.num_params:,} '
            f'elements; unsupported: {len(self.unsupported)}',
        ]
        for name, reason in self.unsupported:
            lines.append(f'  unsupported {name}: {reason}')
        for path, reason in self.opaque:
            lines.append(f'  opaque module {path}: {reason}')
        return '\n'.join(lines)

    def to_networkx(self):
        """The graph as a :class:`networkx.DiGraph`.

        Nodes carry ``op``, ``name``, ``params`` and ``shape``; data-flow
        edges have ``virtual=False``; virtual edges are left out (they are
        derived from the others).
        """
        import networkx as nx

        graph = nx.DiGraph()
        for i, (op, name, params, shape) in enumerate(
                zip(self.op_names, self.node_names, self.node_params,
                    self.node_shape.tolist())):
            graph.add_node(i, op=op, name=name, params=list(params),
                           shape=tuple(shape))
        graph.add_edges_from(self.edge_index.t().tolist(), virtual=False)
        return graph

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the graph to :obj:`path` (atomically)."""
        payload = {
            'format': _FORMAT_VERSION,
            'vocabulary_version': self.vocabulary_version,
            'store': {key: value for key, value in self.to_dict().items()},
        }
        atomic_write(path, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> 'ArchGraph':
        """Reads a graph written by :meth:`save`, refusing other versions."""
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as error:
            raise GhnlibError(f"'{path}' is not a readable ArchGraph file "
                              f'({type(error).__name__}: {error})') from error
        if not isinstance(payload, dict) or 'store' not in payload:
            raise GhnlibError(f"'{path}' is not an ArchGraph file")
        if payload.get('format') != _FORMAT_VERSION:
            raise GhnlibError(f"'{path}' has ArchGraph format "
                              f"{payload.get('format')}, expected "
                              f'{_FORMAT_VERSION}')
        if payload.get('vocabulary_version') != VOCABULARY_VERSION:
            raise GhnlibError(
                f"'{path}' was built with op vocabulary version "
                f"{payload.get('vocabulary_version')} but this ghnlib uses "
                f'{VOCABULARY_VERSION}; convert the model again')
        return cls(**payload['store'])
