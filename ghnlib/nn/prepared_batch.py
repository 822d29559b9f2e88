r"""Everything a graph hypernetwork derives from a list of graphs before it
predicts their parameters, kept by the caller for repeated predictions."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Batch

from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph
from ghnlib.nn.batch_plan import BatchPlan
from ghnlib.nn.sweep_schedule import SweepSchedule

__all__ = ['PreparedBatch']


class PreparedBatch:
    r"""A list of graphs made ready for :class:`~ghnlib.nn.GraphHyperNetwork`:
    their node features batched, the sweep schedule of the gated GNN
    (:class:`~ghnlib.nn.SweepSchedule`) and the decoding plan of every
    parameter (:class:`~ghnlib.nn.batch_plan.BatchPlan`).

    Make one with :meth:`GraphHyperNetwork.prepare` and pass it to
    :meth:`~GraphHyperNetwork.predict` or :meth:`~GraphHyperNetwork.init_`
    in place of the models, to predict the same architectures many times
    (training, sampling a Noise GHN) without batching, scheduling and
    planning them again. The graphs are read once, here:
    changing them later does not change the prepared batch (prepare
    again), and nothing is stored on them. A graph repeated in the list is
    scheduled and planned once.

    The prepared batch fits the GHNs with the same :obj:`num_classes` and
    :obj:`max_shape` on :obj:`device`; others refuse it.

    Args:
        graphs (Sequence[ArchGraph]): The graphs, in prediction order.
        num_classes (int): Classes of the GHN's classifier basis.
        max_shape (Sequence[int]): The GHN's largest decoded weight
            :math:`(O, I, K_h, K_w)`.
        device (torch.device or str, optional): Where the index tensors
            live, the GHN's device. (default: :obj:`"cpu"`)

    Attributes:
        batch (torch_geometric.data.Batch): The graphs batched, without their
            virtual edges (those live in :obj:`schedule`).
        schedule (SweepSchedule): The levels of the forward and backward
            sweeps of the batch.
        plan (BatchPlan): Which node codes each parameter reads and how
            they are decoded, and the layout of the flat output.
    """
    def __init__(self, graphs: Sequence[ArchGraph], num_classes: int,
                 max_shape: Sequence[int],
                 device: Union[torch.device, str] = 'cpu'):
        graphs = list(graphs)
        if not graphs:
            raise GhnlibError('a PreparedBatch needs at least one graph')
        for position, graph in enumerate(graphs):
            if not isinstance(graph, ArchGraph):
                raise GhnlibError(
                    f'graph {position} is a {type(graph).__name__}, not an '
                    f'ArchGraph: convert models with ghnlib.graph.to_graph or '
                    f'let GraphHyperNetwork.prepare do it')
        if len(max_shape) != 4:
            raise GhnlibError(f'max_shape must have four sizes (out, in, kh, '
                              f'kw), got {tuple(max_shape)}')
        self.num_classes = int(num_classes)
        self.max_shape: Tuple[int, ...] = tuple(int(s) for s in max_shape)
        self.batch = Batch.from_data_list(
            graphs, exclude_keys=['virtual_edge_index', 'virtual_edge_dist'])
        self.schedule = SweepSchedule.from_data_list(graphs).to(device)
        self.plan = BatchPlan(graphs, self.batch.ptr.tolist(),
                              self.num_classes, self.max_shape, device)
        # As torch reports it (`cuda:0` for `cuda`), to compare with a GHN's.
        self.device = self.plan.owners.device

    @property
    def num_graphs(self) -> int:
        """Number of graphs."""
        return self.batch.num_graphs

    @property
    def num_nodes(self) -> int:
        """Number of nodes of all graphs together."""
        return self.batch.num_nodes

    @property
    def num_elements(self) -> int:
        """Number of predicted values of all graphs together: the size of
        the flat output of an inference prediction (see :meth:`empty_output`
        and the :obj:`out` argument of :meth:`GraphHyperNetwork.predict`)."""
        return self.plan.num_elements

    def parameter_names(self) -> List[List[str]]:
        """The names of the predicted parameters, one list per graph, in
        the order of the dicts :meth:`GraphHyperNetwork.predict` returns."""
        return [self.plan.names[start:end]
                for start, end in self.plan.graph_tasks]

    def empty_output(self, dtype: Optional[torch.dtype] = None) -> Tensor:
        """A flat buffer that :meth:`GraphHyperNetwork.predict` can write
        the predictions of this batch into (:obj:`out`): uninitialised,
        contiguous, :obj:`num_elements` long, on :obj:`device`.

        Args:
            dtype (torch.dtype, optional): The GHN's dtype.
                (default: :obj:`None`, :func:`torch.get_default_dtype`)
        """
        return torch.empty(self.num_elements, dtype=dtype,
                           device=self.device)

    def __len__(self) -> int:
        return self.num_graphs

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_graphs={self.num_graphs}, '
                f'num_nodes={self.num_nodes}, '
                f'num_elements={self.num_elements}, device={self.device})')
