r"""Recording nodes while a front end (fx trace, ONNX) walks a model, and
turning the record into an :class:`ArchGraph`."""
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch

from ghnlib.graph.arch_graph import ArchGraph
from ghnlib.graph.virtual_edges import virtual_edges
from ghnlib.graph.vocabulary import OP_INDEX, VOCABULARY_VERSION

__all__ = ['Sources', 'NO_SOURCES', 'merge_sources', 'GraphRecorder',
           'node_shape']


class Sources:
    """What a value of the model derives from: graph nodes, and learned
    tensors not yet placed on a node (a parameter, or a computation on
    parameters and constants only)."""
    __slots__ = ('nodes', 'params')

    def __init__(self, nodes: Tuple[int, ...] = (),
                 params: Tuple[str, ...] = ()):
        self.nodes = nodes
        self.params = params


NO_SOURCES = Sources()


def merge_sources(sources: Iterable[Sources]) -> Sources:
    """The union of several :class:`Sources`, in first-seen order."""
    nodes: Dict[int, None] = {}
    params: Dict[str, None] = {}
    for source in sources:
        nodes.update(dict.fromkeys(source.nodes))
        params.update(dict.fromkeys(source.params))
    return Sources(tuple(nodes), tuple(params))


def node_shape(shape: Sequence[int]) -> List[int]:
    """A parameter shape as 4 numbers: padded with ones, or the trailing
    dimensions merged when it has more than four."""
    shape = list(shape)
    if len(shape) > 4:
        shape = shape[:3] + [int(torch.Size(shape[3:]).numel())]
    return shape + [1] * (4 - len(shape))


class GraphRecorder:
    """Nodes in creation order (a topological order: a node's predecessors
    always exist before it), each parameter owned by the first node given
    it."""
    def __init__(self):
        self.ops: List[int] = []
        self.names: List[str] = []
        self.node_params: List[List[str]] = []
        self.preds: List[Tuple[int, ...]] = []
        self.owned: Dict[str, int] = {}
        self.reached: Set[str] = set()
        self.inputs: List[int] = []
        self.output: Optional[int] = None

    def add_node(self, op: str, name: str, preds: Sequence[int],
                 params: Sequence[str]) -> int:
        index = len(self.ops)
        fresh = [p for p in params if p not in self.owned]
        for p in fresh:
            self.owned[p] = index
        self.ops.append(OP_INDEX[op])
        self.names.append(name)
        self.node_params.append(fresh)
        self.preds.append(tuple(preds))
        return index

    def absorb(self, index: int, params: Sequence[str]) -> None:
        """Gives node :obj:`index` the parameters no node owns yet."""
        for p in params:
            if p not in self.owned:
                self.owned[p] = index
                self.node_params[index].append(p)

    def unplaced_reason(self, name: str) -> Optional[str]:
        if name in self.owned:
            return None
        if name in self.reached:
            return 'used only in computations that never meet the input data'
        return 'not used'

    def to_arch_graph(self, param_shapes: Dict[str, Tuple[int, ...]],
                      ve_cutoff: int, unsupported=(), opaque=(),
                      shape_failures=(), frontend: str = '') -> ArchGraph:
        num_nodes = len(self.ops)
        src = [u for v, preds in enumerate(self.preds) for u in preds]
        dst = [v for v, preds in enumerate(self.preds) for _ in preds]
        edge_index = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
        ve_index, ve_dist = virtual_edges(edge_index, num_nodes, ve_cutoff)
        shapes = [[tuple(param_shapes[p]) for p in params]
                  for params in self.node_params]
        first = [node_shape(s[0]) if s else [0, 0, 0, 0] for s in shapes]
        return ArchGraph(
            op=torch.tensor(self.ops, dtype=torch.long),
            node_shape=torch.tensor(first, dtype=torch.long).view(-1, 4),
            edge_index=edge_index,
            virtual_edge_index=ve_index,
            virtual_edge_dist=ve_dist,
            input_index=torch.tensor(self.inputs, dtype=torch.long),
            output_index=torch.tensor([self.output], dtype=torch.long),
            node_names=self.names,
            node_params=self.node_params,
            param_shapes=shapes,
            unsupported=list(unsupported),
            opaque=list(opaque),
            shape_failures=list(shape_failures),
            frontend=frontend,
            vocabulary_version=VOCABULARY_VERSION,
            num_nodes=num_nodes,
        )
