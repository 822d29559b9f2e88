r"""The decoding layout of a batch of graphs (:class:`BatchPlan`): built
once per batch and reused by every prediction on it."""
import itertools
import math
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ghnlib.graph import ArchGraph
from ghnlib.nn.parameter_plan import ParamTask, plan_parameters
from ghnlib.nn.segment_gather import segment_gather

__all__ = ['BatchPlan', 'WeightGroup']


class WeightGroup:
    r"""Weights of a batch decoded together: the same crop of
    :obj:`max_shape` and the same output basis.

    Members are ordered so that those whose real shape *is* the crop (no
    tiling) come first, in runs of equal shape, then the tiled ones.

    Attributes:
        crop (Tuple[int, int, int, int]): The decoded crop.
        classifier (bool): Whether the classifier basis is used.
        tasks (List[int]): Task ids of the members, in member order.
        index (LongTensor): Row of each member's decoder code.
        scale (Tensor): :math:`\sqrt{\beta / \mathrm{fan\_in}}` per member.
        runs (List[Tuple[int, int, Tuple[int, ...]]]): ``(start, end,
            shape)`` of the untiled members, which need no fitting.
        num_untiled (int): Members before the tiled ones.
        views (List[Tuple[int, int, int, int]]): Four-dimensional target of
            every member.
        offsets (List[int]): Where each member starts in the flat output of
            an inference call, then where the group ends.
    """
    __slots__ = ('crop', 'classifier', 'tasks', 'index', 'scale', 'runs',
                 'num_untiled', 'views', 'offsets')


class BatchPlan:
    r"""The decoding layout of a list of graphs, batched: which node codes
    each parameter reads, how weights are grouped for the decoder, and how
    vectors are gathered. Built once per batch (see
    :meth:`GraphHyperNetwork.prepare`); every prediction on the batch then
    runs a fixed number of tensor ops per group instead of Python work per
    parameter.

    Args:
        graphs (Sequence[ArchGraph]): The graphs, in batch order.
        node_offsets (Sequence[int]): First node of each graph in the batch.
        num_classes (int): Classes of the GHN's classifier basis.
        max_shape (Sequence[int]): The decoder's :obj:`max_shape`.
        device (torch.device): Where the index tensors live.
    """
    def __init__(self, graphs: Sequence[ArchGraph], node_offsets: Sequence[int],
                 num_classes: int, max_shape: Sequence[int], device):
        tasks: List[ParamTask] = []
        nodes: List[int] = []
        self.graph_tasks: List[Tuple[int, int]] = []
        # A graph repeated in the batch is planned once; keyed on identity
        # for the duration of this call only, while `graphs` holds them.
        planned: Dict[int, List[ParamTask]] = {}
        for graph, offset in zip(graphs, node_offsets):
            plan = planned.get(id(graph))
            if plan is None:
                plan = planned[id(graph)] = plan_parameters(
                    graph, num_classes, max_shape)
            self.graph_tasks.append((len(tasks), len(tasks) + len(plan)))
            tasks.extend(plan)
            nodes.extend(offset + task.node for task in plan)
        self.names = [task.name for task in tasks]
        self.shapes = [task.shape for task in tasks]
        self.num_tasks = len(tasks)
        # Each node owning parameters is decoded once; rows[k] is its code's
        # row for task k.
        owners, rows = torch.unique(torch.tensor(nodes, dtype=torch.long),
                                    return_inverse=True)
        self.owners = owners.to(device)
        rows = rows.tolist()
        self.weight_groups = self._weight_groups(tasks, rows, device)
        self._vector_layout(tasks, rows, int(max_shape[0]), device)
        # The flat output of an inference call: the weight groups one after
        # the other, then the vectors.
        offset = 0
        for group in self.weight_groups:
            group.offsets = list(itertools.accumulate(
                (math.prod(view) for view in group.views), initial=offset))
            offset = group.offsets[-1]
        self.vector_offset = offset
        self.num_elements = offset + sum(self.vector_sizes)

    @staticmethod
    def _weight_groups(tasks, rows, device) -> List[WeightGroup]:
        members: Dict[Tuple, List[int]] = {}
        for k, task in enumerate(tasks):
            if task.kind == 'weight':
                members.setdefault((task.crop, task.classifier), []).append(k)
        groups = []
        for (crop, classifier), ids in members.items():
            untiled = sorted((k for k in ids if tasks[k].view == crop),
                             key=lambda k: tasks[k].shape)
            tiled = [k for k in ids if tasks[k].view != crop]
            group = WeightGroup()
            group.crop, group.classifier = crop, classifier
            group.tasks = untiled + tiled
            group.index = torch.tensor([rows[k] for k in group.tasks],
                                       device=device)
            # float64, cast to the GHN's dtype when used.
            group.scale = torch.tensor([tasks[k].scale for k in group.tasks],
                                       dtype=torch.float64, device=device)
            group.runs = []
            for position, k in enumerate(untiled):
                shape = tasks[k].shape
                if group.runs and group.runs[-1][2] == shape:
                    group.runs[-1] = (group.runs[-1][0], position + 1, shape)
                else:
                    group.runs.append((position, position + 1, shape))
            group.num_untiled = len(untiled)
            group.views = [tasks[k].view for k in group.tasks]
            groups.append(group)
        return groups

    def _vector_layout(self, tasks, rows, width: int, device) -> None:
        r"""Vectors are gathered in one go: element :math:`j` of a vector
        of length :math:`t` reads entry :math:`j \bmod O` of its decoded
        pair's slot (slice from the start, tile where :math:`t > O`)."""
        ids = [k for k, task in enumerate(tasks) if task.kind != 'weight']
        self.vector_tasks = ids
        self.vector_sizes = [int(math.prod(tasks[k].shape)) for k in ids]
        # A node's vectors (a norm's weight and bias) share its decoded pair.
        nodes, pair_of_task = torch.unique(
            torch.tensor([rows[k] for k in ids], dtype=torch.long),
            return_inverse=True)
        self.vector_index = nodes.to(device)
        sizes = torch.tensor(self.vector_sizes, dtype=torch.long)
        slots = torch.tensor([tasks[k].slot for k in ids], dtype=torch.long)
        # Flat position in the [nodes, 2, O] decoded pairs (int32 where it
        # fits: one index per predicted vector element): j mod O, shifted
        # by the start of the vector's slot.
        dtype = torch.int32 if len(nodes) * 2 * width <= torch.iinfo(
            torch.int32).max else torch.long
        longest = int(sizes.max()) if ids else 0
        source, = segment_gather(
            [torch.arange(longest, dtype=dtype).remainder_(width)],
            torch.zeros_like(sizes), sizes,
            (pair_of_task * 2 + slots) * width)
        self.vector_source = source.to(device)
        # Per vector, in float64; spread over the elements once per dtype by
        # vector_affine.
        self._vector_task_affine = tuple(
            torch.tensor([getattr(tasks[k], name) for k in ids],
                         dtype=torch.float64) for name in ('scale', 'shift'))
        self._vector_affine = {}
        self._vector_device = device

    def vector_affine(self, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        r"""Per vector element, :math:`a` and :math:`b` of
        :math:`a \tanh(x) + b` in :obj:`dtype`."""
        if dtype not in self._vector_affine:
            sizes = torch.tensor(self.vector_sizes, dtype=torch.long)
            self._vector_affine[dtype] = tuple(
                torch.repeat_interleave(t, sizes).to(
                    self._vector_device, dtype)
                for t in self._vector_task_affine)
        return self._vector_affine[dtype]

    def assemble(self, values: List[Tensor]) -> List[Dict[str, Tensor]]:
        """One ``{name: tensor}`` dict per graph from the tensors of all
        tasks, in task order."""
        return [dict(zip(self.names[start:end], values[start:end]))
                for start, end in self.graph_tasks]
