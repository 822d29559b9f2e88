r"""Weight datasets: the k×k kernel slices of every convolutional layer of a
model zoo (the paper's "Weight-Datasets", after the Deep Weight Prior)."""
import dataclasses
import math
from typing import Dict, List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph, to_graph
from ghnlib.graph.vocabulary import CONV_OPS

__all__ = ['ConvLayer', 'conv_layers', 'kernel_slices', 'prune_slices',
           'WeightDataset', 'build_weight_datasets']

#: Graph ops whose 4-D weight is a grid of k×k kernels.


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """A convolutional weight found through the graph: its parameter name,
    shape :math:`(O, I, k_h, k_w)` and the graph node that owns it."""
    name: str
    shape: Tuple[int, int, int, int]
    node: int
    op: str

    @property
    def kernel_size(self) -> Tuple[int, int]:
        return self.shape[2], self.shape[3]


def conv_layers(model: Union[nn.Module, ArchGraph],
                input_shape: Sequence[int] = (1, 3, 32, 32)
                ) -> List[ConvLayer]:
    """The convolutional layers of :obj:`model`, in graph order: the 4-D
    weights owned by conv nodes of its computational graph (not guessed from
    parameter names or state-dict order).

    Args:
        model (nn.Module or ArchGraph): The model or its graph.
        input_shape (Sequence[int], optional): Example input for the
            conversion. (default: :obj:`(1, 3, 32, 32)`)
    """
    graph = model if isinstance(model, ArchGraph) else to_graph(
        model, input_shape=input_shape)
    layers = []
    for node, op in enumerate(graph.op_names):
        if op not in CONV_OPS:
            continue
        for name, shape in zip(graph.node_params[node],
                               graph.param_shapes[node]):
            if len(shape) == 4:
                layers.append(ConvLayer(name, tuple(int(s) for s in shape),
                                        node, op))
    return layers


def kernel_slices(weight: Tensor) -> Tensor:
    r"""The :math:`k_h \times k_w` slices of a 4-D weight, one per (out, in)
    channel pair in row-major order: ``weight.reshape(-1, kh, kw)``, so
    ``slices.view(weight.shape)`` gives the weight back.

    Shapes:
        - **input:** :math:`[O, I, k_h, k_w]`
        - **output:** :math:`[O \cdot I, k_h, k_w]`
    """
    if weight.dim() != 4:
        raise GhnlibError(f'kernel_slices needs a 4-D convolution weight, got '
                          f'shape {tuple(weight.shape)}')
    return weight.detach().reshape(-1, weight.size(2), weight.size(3))


def prune_slices(slices: Tensor, fraction: float = 0.05) -> Tensor:
    r"""Drops the :math:`\lfloor f N \rfloor` slices of smallest :math:`\ell_2`
    norm (the Deep Weight Prior's advice), keeping the others in their
    original order.

    Args:
        slices (Tensor): :math:`[N, k_h, k_w]`.
        fraction (float, optional): :math:`f`. (default: :obj:`0.05`)
    """
    if not 0 <= fraction < 1:
        raise GhnlibError(f'prune fraction must be in [0, 1), got {fraction}')
    drop = int(math.floor(fraction * slices.size(0)))
    if drop == 0:
        return slices
    norms = slices.flatten(1).norm(dim=1)
    # A stable sort keeps ties deterministic.
    order = torch.sort(norms, stable=True).indices
    keep = torch.sort(order[drop:]).values
    return slices.index_select(0, keep)


@dataclasses.dataclass
class WeightDataset:
    """The pruned kernel slices of one layer over all zoo members."""
    layer: ConvLayer
    slices: Tensor
    members: int
    dropped: int


def build_weight_datasets(states: Sequence[Dict[str, Tensor]],
                          model: Union[nn.Module, ArchGraph], *,
                          prune_fraction: float = 0.05,
                          input_shape: Sequence[int] = (1, 3, 32, 32)
                          ) -> Tuple[Dict[str, WeightDataset],
                                     Dict[str, str]]:
    r"""One :class:`WeightDataset` per convolutional layer of :obj:`model`
    from the trained :obj:`states` of a zoo (pruned per layer, over all
    members together).

    Layers with :math:`1 \times 1` kernels are skipped: a slice would be a
    single number, nothing for a kernel model to learn; they keep their
    default initialisation. The second return value says, per skipped
    layer, why.

    Args:
        states (Sequence[dict]): State dicts of the zoo members.
        model (nn.Module or ArchGraph): The zoo's architecture.
        prune_fraction (float, optional): See :func:`prune_slices`.
            (default: :obj:`0.05`)
        input_shape (Sequence[int], optional): Example input for the
            conversion. (default: :obj:`(1, 3, 32, 32)`)
    """
    if not states:
        raise GhnlibError('the zoo is empty: train members first '
                          '(`ghnlib zoo`)')
    datasets, skipped = {}, {}
    for layer in conv_layers(model, input_shape):
        if layer.kernel_size == (1, 1):
            skipped[layer.name] = ('1×1 kernels: a slice is one number; the '
                                   'layer keeps its default initialisation')
            continue
        per_member = []
        for k, state in enumerate(states):
            if layer.name not in state:
                raise GhnlibError(f"zoo member {k} has no '{layer.name}': the "
                                  'zoo was trained on another architecture')
            weight = state[layer.name]
            if tuple(weight.shape) != layer.shape:
                raise GhnlibError(
                    f"zoo member {k}: '{layer.name}' has shape "
                    f'{tuple(weight.shape)}, the architecture {layer.shape}')
            per_member.append(kernel_slices(weight.float()))
        slices = torch.cat(per_member)
        kept = prune_slices(slices, prune_fraction)
        datasets[layer.name] = WeightDataset(layer, kept.contiguous(),
                                             len(states),
                                             slices.size(0) - kept.size(0))
    return datasets, skipped
