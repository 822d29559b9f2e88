r"""The graph hypernetwork (GHN-2) and its Noise GHN variant."""
import json
import math
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from torch_geometric.data import Batch

from ghnlib.data.image_transform import ImageTransform
from ghnlib.errors import GhnlibError
from ghnlib.graph import OPS, VOCABULARY_VERSION, ArchGraph, to_graph
from ghnlib.nn.batch_plan import BatchPlan, WeightGroup
from ghnlib.nn.decoder import ParameterDecoder
from ghnlib.nn.gated_gnn import GatedGNN
from ghnlib.nn.node_encoder import NodeEncoder
from ghnlib.nn.parameter_plan import VECTOR_RANGES, ParamTask, plan_parameters
from ghnlib.nn.prepared_batch import PreparedBatch
from ghnlib.nn.sweep_schedule import SweepSchedule
from ghnlib.ops import tile_normalize
from ghnlib.utils.checkpoint import atomic_write, read_safetensors

__all__ = ['GraphHyperNetwork', 'ParamTask', 'plan_parameters',
           'list_pretrained', 'VECTOR_RANGES']

#: Checkpoints shipped inside the package (``ghnlib/pretrained/``); how each
#: was made is recorded in ``ghnlib/pretrained/README.md``.
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'pretrained')


def list_pretrained() -> List[str]:
    """Names :meth:`GraphHyperNetwork.pretrained` accepts."""
    if not os.path.isdir(PRETRAINED_DIR):
        return []
    return sorted(f[:-len('.safetensors')] for f in os.listdir(PRETRAINED_DIR)
                  if f.endswith('.safetensors'))

_FORMAT = 'ghnlib.GraphHyperNetwork'
# Elements of V ⊗ K per decoding chunk (about 1 MB in float32).
_DECODE_CHUNK = 1 << 18
# Members whose factors are evaluated at once by an inference prediction.
_FACTOR_BLOCK = 256
_FORMAT_VERSION = 1

_Architectures = Union[nn.Module, ArchGraph, Sequence[Union[nn.Module,
                                                           ArchGraph]]]


class GraphHyperNetwork(nn.Module):
    r"""Predicts every parameter of an architecture from its computational
    graph, GHN-2 (`"Parameter Prediction for Unseen Deep Architectures"
    <https://arxiv.org/abs/2110.13100>`_) with the Noise GHN of
    `"From Pointwise to Powerhouse: Initialising Neural Networks with
    Generative Models" <https://arxiv.org/abs/2310.16695>`_:

    .. math::
        \mathbf{H}^0 = \mathrm{Enc}(\mathcal{A}), \quad
        \mathbf{H}^T = \mathrm{GatedGNN}(\mathbf{H}^0, \mathcal{A}), \quad
        \mathbf{w}_v = \mathrm{fit}\big(\mathrm{Dec}(\mathbf{h}^T_v \,\|\,
        \boldsymbol{\xi})\big), \quad \boldsymbol{\xi} \sim
        \mathcal{N}(\mathbf{0}, \mathbf{I})

    where :math:`\mathrm{fit}` slices or tiles each decoded tensor to the
    real parameter shape and normalises it
    (:func:`ghnlib.ops.tile_normalize`). With :obj:`noise_dim` = 0 it is the
    deterministic GHN.

    The work that depends on the architectures only (batching their graphs,
    the sweep schedule, the decoding plan) can be done once with
    :meth:`prepare`; the :class:`~ghnlib.nn.PreparedBatch` it returns is
    passed to :meth:`predict` or :meth:`init_` in place of the
    architectures. The GHN itself keeps nothing between calls.

    Args:
        hidden_channels (int, optional): Node state size.
            (default: :obj:`32`)
        num_rounds (int, optional): Forward+backward sweeps of the GatedGNN.
            (default: :obj:`1`)
        max_shape (Sequence[int], optional): Largest decoded weight
            :math:`(O, I, K_h, K_w)`. (default: :obj:`(64, 64, 3, 3)`)
        num_classes (int, optional): Classes of the classifier basis.
            (default: :obj:`10`)
        noise_dim (int, optional): Size of the noise vector :math:`\xi`;
            the paper's Noise GHN uses 8. (default: :obj:`0`)
        decoder_channels (int, optional): Width of the decoder MLP.
            (default: :obj:`128`)
        rank (int, optional): Rank of the weight decoder.
            (default: :obj:`16`)
        layer_norm (bool, optional): LayerNorm after each sweep.
            (default: :obj:`True`)
        ve_cutoff (int, optional): Virtual-edge cutoff used when models are
            converted on the fly. (default: :obj:`50`)
    """
    def __init__(self, hidden_channels: int = 32, num_rounds: int = 1,
                 max_shape: Sequence[int] = (64, 64, 3, 3),
                 num_classes: int = 10, noise_dim: int = 0,
                 decoder_channels: int = 128, rank: int = 16,
                 layer_norm: bool = True, ve_cutoff: int = 50):
        super().__init__()
        if noise_dim < 0:
            raise GhnlibError(f'noise_dim must be >= 0, got {noise_dim}')
        self.config = dict(hidden_channels=hidden_channels,
                           num_rounds=num_rounds, max_shape=list(max_shape),
                           num_classes=num_classes, noise_dim=noise_dim,
                           decoder_channels=decoder_channels, rank=rank,
                           layer_norm=layer_norm, ve_cutoff=ve_cutoff)
        self.noise_dim = noise_dim
        self.num_classes = num_classes
        self.ve_cutoff = ve_cutoff
        self.encoder = NodeEncoder(hidden_channels, len(OPS))
        self.gnn = GatedGNN(hidden_channels, num_rounds=num_rounds,
                            layer_norm=layer_norm)
        self.decoder = ParameterDecoder(hidden_channels + noise_dim, max_shape,
                                        num_classes, decoder_channels, rank)
        #: What the GHN was trained for, saved with it: ``data`` (the data
        #: recipe: dataset, image_size, channels, mean, std), ``command``,
        #: ``archs`` / ``space`` and ``accuracy`` (measured figures).
        self.meta: Dict[str, Any] = {}

    def example_input_shape(self, input_shape: Optional[Sequence[int]] = None
                            ) -> Tuple[int, ...]:
        r"""The example input shape a model is converted at: :obj:`input_shape`
        if given, else the one of the data recipe in :attr:`meta`, else
        :math:`(1, 3, 32, 32)`. A given shape other than the recipe's warns:
        the predicted weights were trained, and measured, for the recipe's
        inputs only."""
        recipe = self.meta.get('data')
        expected = None
        if recipe:
            size = recipe['image_size']
            expected = (1, recipe['channels'], size, size)
        if input_shape is None:
            return expected or (1, 3, 32, 32)
        input_shape = tuple(int(s) for s in input_shape)
        if expected is not None and input_shape[-3:] != expected[1:]:
            warnings.warn(
                f"this GHN was trained on {recipe.get('dataset', 'its data')} "
                f'at {expected[1:]} (channels, height, width), but the model '
                f'is converted for inputs of shape {input_shape}: its weights '
                f'are only known to work for the recipe\'s inputs; convert at '
                f'input_shape={expected} and feed images through '
                f'ghn.transforms()', stacklevel=3)
        return input_shape

    def transforms(self) -> ImageTransform:
        r"""The input transform of the data recipe the GHN was trained on
        (resize, channels, normalisation), as torchvision weights'
        :obj:`transforms()`: apply it to images in :math:`[0, 1]` before
        they reach a network the GHN initialised.

        Raises:
            GhnlibError: If :attr:`meta` holds no data recipe.
        """
        recipe = self.meta.get('data')
        if not recipe:
            raise GhnlibError('this GHN carries no data recipe (meta["data"]); '
                              'it was not saved with one')
        return ImageTransform.from_dict(recipe)

    def _device(self) -> torch.device:
        return self.encoder.op_embedding.weight.device

    def _dtype(self) -> torch.dtype:
        return self.encoder.op_embedding.weight.dtype

    def graph_of(self, model: Union[nn.Module, ArchGraph],
                 input_shape: Optional[Sequence[int]] = None) -> ArchGraph:
        """The graph of :obj:`model` (converted if it is a module)."""
        if isinstance(model, ArchGraph):
            if getattr(model, 'vocabulary_version', None) != VOCABULARY_VERSION:
                raise GhnlibError(
                    f'graph uses op vocabulary version '
                    f"{getattr(model, 'vocabulary_version', None)}, this GHN "
                    f'{VOCABULARY_VERSION}: convert the model again')
            return model
        if isinstance(model, nn.Module):
            return to_graph(model,
                            input_shape=self.example_input_shape(input_shape),
                            ve_cutoff=self.ve_cutoff)
        raise GhnlibError(f'expected an nn.Module or an ArchGraph, got '
                          f'{type(model).__name__}')

    def _noise(self, noise: Optional[Tensor], generator, batch: Batch,
               per_node: bool, device) -> Optional[Tensor]:
        if self.noise_dim == 0:
            if noise is not None and noise.numel() > 0:
                raise GhnlibError('this GHN has noise_dim=0 and takes no noise')
            return None
        num_graphs, num_nodes = batch.num_graphs, batch.num_nodes
        if noise is None:
            rows = num_nodes if per_node else num_graphs
            noise = torch.randn(rows, self.noise_dim, generator=generator)
        noise = noise.to(device)
        if noise.dim() == 1:
            noise = noise.view(1, -1).expand(num_graphs, -1)
        if noise.dim() != 2 or noise.size(1) != self.noise_dim or \
                noise.size(0) not in (num_graphs, num_nodes):
            raise GhnlibError(
                f'noise must have shape [{self.noise_dim}], [{num_graphs}, '
                f'{self.noise_dim}] (per architecture) or [{num_nodes}, '
                f'{self.noise_dim}] (per node), got {tuple(noise.shape)}')
        if noise.size(0) == num_nodes and (per_node or num_nodes != num_graphs):
            return noise
        return noise.index_select(0, batch.batch.to(device))

    def prepare(self, models: _Architectures, *,
                input_shape: Optional[Sequence[int]] = None) -> PreparedBatch:
        r"""Batches, schedules and plans the architectures for this GHN, once:
        pass the result to :meth:`predict` or :meth:`init_` in place of the
        architectures to predict them again without that work. Nothing is
        kept by the GHN or written onto the graphs.

        Args:
            models (nn.Module, ArchGraph or a sequence of them): The
                architectures, as in :meth:`predict`.
            input_shape (Sequence[int], optional): Example input shape for
                converting modules. (default: :obj:`None`, the input of the data recipe in
                :attr:`meta`, else :obj:`(1, 3, 32, 32)`)

        Returns:
            A :class:`~ghnlib.nn.PreparedBatch` for this GHN's
            :obj:`num_classes`, :obj:`max_shape` and device.
        """
        graphs = self._graphs(models, input_shape)
        if not graphs:
            raise GhnlibError('prepare needs at least one model or graph')
        return PreparedBatch(graphs, self.num_classes, self.decoder.max_shape,
                             self._device())

    def _graphs(self, models: _Architectures,
                input_shape: Sequence[int]) -> List[ArchGraph]:
        if isinstance(models, (nn.Module, ArchGraph)):
            models = [models]
        return [self.graph_of(m, input_shape) for m in models]

    def _prepared(self, models: Union[_Architectures, PreparedBatch],
                  input_shape: Sequence[int]) -> Optional[PreparedBatch]:
        """:obj:`models` prepared for this GHN (:obj:`None` for no
        models); a prepared batch is checked to fit."""
        if not isinstance(models, PreparedBatch):
            graphs = self._graphs(models, input_shape)
            return PreparedBatch(graphs, self.num_classes,
                                 self.decoder.max_shape, self._device()) \
                if graphs else None
        mine = (self.num_classes, self.decoder.max_shape, self._device())
        theirs = (models.num_classes, models.max_shape, models.device)
        if theirs != mine:
            raise GhnlibError(
                f'the batch was prepared for num_classes={theirs[0]}, '
                f'max_shape={theirs[1]} on {theirs[2]}, this GHN has '
                f'num_classes={mine[0]}, max_shape={mine[1]} on {mine[2]}: '
                f'prepare it with this GHN (ghn.prepare(graphs))')
        return models

    def node_states(self, batch: Batch,
                    schedule: Optional[SweepSchedule] = None) -> Tensor:
        """Final node states :math:`\\mathbf{H}^T` of a batch of graphs
        (scheduled here unless :obj:`schedule` is given)."""
        device = self._device()
        h = self.encoder(batch.op.to(device), batch.node_shape.to(device))
        if schedule is None:
            schedule = SweepSchedule.from_data(batch).to(device)
        return self.gnn(h, schedule)

    def predict(self, models: Union[_Architectures, PreparedBatch],
                noise: Optional[Tensor] = None,
                generator: Optional[torch.Generator] = None, *,
                per_node_noise: bool = False,
                input_shape: Optional[Sequence[int]] = None,
                out: Optional[Tensor] = None) -> List[Dict[str, Tensor]]:
        r"""Predicts all parameters of many architectures in one pass.

        Args:
            models (nn.Module, ArchGraph, a sequence of them, or
                PreparedBatch): _Architectures; modules are converted with
                :func:`~ghnlib.graph.to_graph` on :obj:`input_shape` (pass
                graphs to reuse a conversion or give other example inputs,
                or the result of :meth:`prepare` to reuse the batching,
                scheduling and planning as well).
            noise (Tensor, optional): :math:`\xi`: shape :math:`[D]`,
                :math:`[B, D]` (one per architecture) or :math:`[N, D]` (one
                per node). (default: :obj:`None`, drawn from
                :math:`\mathcal{N}(0, I)`)
            generator (torch.Generator, optional): For the noise draw.
                (default: :obj:`None`)
            per_node_noise (bool, optional): Draw one noise vector per node
                instead of one per architecture. (default: :obj:`False`)
            input_shape (Sequence[int], optional): Example input shape for
                converting modules. (default: :obj:`None`, the input of the data recipe in
                :attr:`meta`, else :obj:`(1, 3, 32, 32)`)
            out (Tensor, optional): Where to write the predictions, for
                inference only (under :func:`torch.no_grad`, or with no
                gradient needed): a contiguous tensor of shape
                :math:`[M]`, :math:`M` the batch's
                :obj:`~ghnlib.nn.PreparedBatch.num_elements`, of the
                GHN's dtype, on its device
                (:meth:`~ghnlib.nn.PreparedBatch.empty_output` makes one).
                It is checked before any work. Every returned tensor is
                then a view of it; reusing one buffer for many calls saves
                allocating (and first touching) fresh memory each time,
                and overwrites the previous results.
                (default: :obj:`None`, fresh memory)

        Returns:
            One ``{parameter name: tensor}`` dict per architecture,
            differentiable w.r.t. the GHN's parameters. Without gradients
            the tensors of one call are views of one flat buffer
            (:obj:`out` where given).
        """
        self._check_out(out, noise)
        prepared = self._prepared(models, input_shape)
        if prepared is None:
            if out is not None and out.numel() != 0:
                raise GhnlibError(f'out has {out.numel()} elements, but no '
                                  f'architecture was given: pass 0')
            return []
        plan = prepared.plan
        if out is not None and out.numel() != plan.num_elements:
            raise GhnlibError(
                f'out has {out.numel()} elements, the predictions of these '
                f'architectures {plan.num_elements}: pass a tensor of shape '
                f'[{plan.num_elements}] (prepared.empty_output())')
        inference = self._is_inference(noise)
        code = self._codes(prepared, noise, generator, per_node_noise)
        values: List[Optional[Tensor]] = [None] * plan.num_tasks
        if inference:
            if out is None:
                out = torch.empty(plan.num_elements, dtype=code.dtype,
                                  device=code.device)
            self._decode_inference(plan, code, values, out)
        else:
            for group in plan.weight_groups:
                self._decode_weights(group, code, plan.shapes, values)
            self._decode_vectors(plan, code, values)
        return plan.assemble(values)

    def _is_inference(self, noise: Optional[Tensor]) -> bool:
        """Whether a prediction needs no autograd graph."""
        return not torch.is_grad_enabled() or not (
            (noise is not None and noise.requires_grad)
            or any(p.requires_grad for p in self.parameters()))

    def _check_out(self, out: Optional[Tensor],
                   noise: Optional[Tensor]) -> None:
        """Refuses an :obj:`out` the predictions cannot be written into,
        before any work (its size is checked once the batch is known)."""
        if out is None:
            return
        if not isinstance(out, Tensor):
            raise GhnlibError(f'out must be a tensor, got '
                              f'{type(out).__name__}')
        if not self._is_inference(noise):
            raise GhnlibError(
                'out is for predictions without gradients: call predict '
                'under torch.no_grad() (or with the GHN\'s parameters '
                'frozen), or leave out unset to get differentiable tensors')
        dtype, device = self._dtype(), self._device()
        if out.dtype != dtype or out.device != device:
            raise GhnlibError(f'out is {out.dtype} on {out.device}, the GHN '
                              f'predicts {dtype} on {device}: pass a tensor '
                              f'of that dtype and device')
        if out.dim() != 1 or not out.is_contiguous():
            raise GhnlibError(
                f'out must be a contiguous one-dimensional tensor, got shape '
                f'{tuple(out.shape)}'
                + ('' if out.is_contiguous() else ', not contiguous'))

    def _decode_inference(self, plan: BatchPlan, code: Tensor,
                          values: List[Optional[Tensor]], flat: Tensor
                          ) -> None:
        for group in plan.weight_groups:
            self._decode_weights_inference(group, code, plan.shapes, values,
                                           flat)
        self._decode_vectors(plan, code, values, flat[plan.vector_offset:])

    def _codes(self, prepared: PreparedBatch, noise: Optional[Tensor],
               generator: Optional[torch.Generator], per_node_noise: bool
               ) -> Tensor:
        """The decoder code of every node owning parameters."""
        h = self.node_states(prepared.batch, prepared.schedule)
        xi = self._noise(noise, generator, prepared.batch, per_node_noise,
                         self._device())
        z = h if xi is None else torch.cat([h, xi.to(h.dtype)], dim=-1)
        return self.decoder.embed(z.index_select(0, prepared.plan.owners))

    @staticmethod
    def _scales(scale: Tensor, crop: Tuple[int, int, int, int],
                sq_norm: Tensor) -> Tensor:
        # Unit RMS before the sqrt(beta / fan_in) factor: the weights then
        # have He's variance whatever the decoder's output scale.
        rms = (sq_norm / math.prod(crop)).sqrt().clamp_min(1e-12)
        return scale.to(sq_norm.dtype) / rms

    def _decode_weights(self, group: WeightGroup, code: Tensor,
                        shapes: List[Tuple[int, ...]],
                        values: List[Optional[Tensor]]) -> None:
        block, sq_norm = self.decoder.weights(
            code.index_select(0, group.index), group.crop, group.classifier,
            return_norm=True)
        fitted = tile_normalize(block, group.views,
                                self._scales(group.scale, group.crop, sq_norm))
        for k, value in zip(group.tasks, fitted):
            values[k] = value.reshape(shapes[k])

    def _scaled_factors(self, group: WeightGroup, code: Tensor,
                        members: slice = slice(None)
                        ) -> Tuple[Tensor, Tensor, Tensor]:
        """U, V and K of the weights of the group's :obj:`members`, with
        each weight's final scale folded into U: U (V ⊗ K) is the fitted
        weight's crop."""
        u, v, k, sq_norm = self.decoder.factors(
            code.index_select(0, group.index[members]), group.crop,
            group.classifier)
        factor = self._scales(group.scale[members], group.crop, sq_norm)
        return u.mul_(factor.view(-1, 1, 1) / math.sqrt(self.decoder.rank)), \
            v, k

    def _decode_weights_into(self, group: WeightGroup, code: Tensor,
                             destinations: List[Tensor]) -> None:
        # One architecture: each weight is decoded straight into its
        # destination (a model's parameter), one product per weight.
        u, v, k = self._scaled_factors(group, code)
        o, i, a, b = group.crop
        for member, task in enumerate(group.tasks):
            product = self.decoder.outer(v[member:member + 1],
                                         k[member:member + 1])
            destination = destinations[task]
            if member < group.num_untiled:
                torch.bmm(u[member:member + 1], product,
                          out=destination.view(1, o, i * a * b))
            else:
                block = torch.bmm(u[member:member + 1], product)
                tile_normalize(block.view(1, o, i, a, b),
                               [group.views[member]], u.new_ones(1),
                               out=destination.view(-1))

    def _decode_weights_inference(self, group: WeightGroup, code: Tensor,
                                  shapes: List[Tuple[int, ...]],
                                  values: List[Optional[Tensor]],
                                  flat: Tensor) -> None:
        # The same values as _decode_weights, without an autograd graph: the
        # per-tensor factor goes into U, so that the decoder's product writes
        # the final weights of every untiled member straight into the flat
        # output (one pass over it instead of three), in chunks whose V ⊗ K
        # stays in cache; tiled members are decoded at crop size and fitted
        # into place by tile_normalize. Factors are evaluated for a block of
        # members at a time, so their memory does not grow with the batch.
        o, i, a, b = group.crop
        chunk = max(1, _DECODE_CHUNK // (self.decoder.rank * i * a * b))
        members_per_block = max(chunk, _FACTOR_BLOCK)
        offsets = group.offsets
        for start, end, shape in group.runs:
            block = flat[offsets[start]:offsets[end]].view(end - start, o,
                                                           i * a * b)
            for head in range(start, end, members_per_block):
                tail = min(end, head + members_per_block)
                u, v, k = self._scaled_factors(group, code, slice(head, tail))
                for first in range(0, tail - head, chunk):
                    last = min(tail - head, first + chunk)
                    torch.bmm(u[first:last],
                              self.decoder.outer(v[first:last],
                                                 k[first:last]),
                              out=block[head - start + first:
                                        head - start + last])
            for task, value in zip(group.tasks[start:end],
                                   block.view(end - start, *shape).unbind(0)):
                values[task] = value
        first = group.num_untiled
        if first < len(group.tasks):
            u, v, k = self._scaled_factors(group, code, slice(first, None))
            block = torch.bmm(u, self.decoder.outer(v, k))
            fitted = tile_normalize(block.view(-1, o, i, a, b),
                                    group.views[first:],
                                    u.new_ones(len(group.tasks) - first),
                                    out=flat[offsets[first]:offsets[-1]])
            for task, value in zip(group.tasks[first:], fitted):
                values[task] = value.view(shapes[task])

    def _decode_vectors(self, plan: BatchPlan, code: Tensor,
                        values: List[Optional[Tensor]],
                        out: Optional[Tensor] = None) -> None:
        if not plan.vector_tasks:
            return
        pairs = self.decoder.vector_pair(
            code.index_select(0, plan.vector_index))
        pairs = pairs.tanh() if torch.is_grad_enabled() else pairs.tanh_()
        scale, shift = plan.vector_affine(pairs.dtype)
        if out is None:
            flat = pairs.reshape(-1).index_select(0, plan.vector_source)
            flat = flat * scale + shift
        else:
            flat = torch.index_select(pairs.reshape(-1), 0, plan.vector_source,
                                      out=out)
            flat.mul_(scale).add_(shift)
        for k, value in zip(plan.vector_tasks,
                            flat.split(plan.vector_sizes)):
            values[k] = value if value.dim() == len(plan.shapes[k]) else \
                value.view(plan.shapes[k])

    @torch.no_grad()
    def init_(self, model: nn.Module, noise: Optional[Tensor] = None,
              generator: Optional[torch.Generator] = None, *,
              graph: Union[ArchGraph, PreparedBatch, None] = None,
              input_shape: Optional[Sequence[int]] = None) -> nn.Module:
        """Writes predicted parameters into :obj:`model` (batch-norm running
        statistics are reset) and returns it. The weights are decoded
        straight into the model's parameters where they are contiguous and
        of the GHN's dtype and device (else through one temporary buffer);
        a graph that does not fit the model is refused before anything is
        computed or written.

        Args:
            model (nn.Module): The model to initialise.
            noise, generator: As in :meth:`predict`.
            graph (ArchGraph or PreparedBatch, optional): The model's graph,
                if already converted, or the model prepared with
                :meth:`prepare` (one architecture), to initialise many
                models of this architecture without preparing each time.
                (default: :obj:`None`)
            input_shape (Sequence[int], optional): Example input shape for
                converting :obj:`model`. (default: :obj:`None`, the input of the data recipe in
                :attr:`meta`, else :obj:`(1, 3, 32, 32)`)
        """
        if graph is None:
            graph = self.graph_of(model, input_shape)
        if isinstance(graph, PreparedBatch) and graph.num_graphs != 1:
            raise GhnlibError(f'init_ initialises one model, the prepared '
                              f'batch holds {graph.num_graphs} architectures: '
                              f'prepare the model alone (ghn.prepare(model))')
        prepared = self._prepared(graph, input_shape)
        plan = prepared.plan
        params = dict(model.named_parameters())
        missing = sorted(set(plan.names) - set(params))
        if missing:
            raise GhnlibError(f'the graph does not belong to this model: it '
                              f'has parameters {missing[:3]} the model lacks')
        destinations = [params[name] for name in plan.names]
        for name, shape, param in zip(plan.names, plan.shapes, destinations):
            if tuple(param.shape) != shape:
                raise GhnlibError(
                    f'the graph does not belong to this model: its '
                    f'parameter {name!r} has shape {shape}, the model\'s '
                    f'{tuple(param.shape)}')
        code = self._codes(prepared, noise, generator, False)
        values: List[Optional[Tensor]] = [None] * plan.num_tasks
        if all(p.is_contiguous() and p.dtype == code.dtype
               and p.device == code.device for p in destinations):
            # Decoded straight into the parameters: no second copy of the
            # model's weights, nothing kept afterwards.
            for group in plan.weight_groups:
                self._decode_weights_into(group, code, destinations)
            self._decode_vectors(plan, code, values)
            for k in plan.vector_tasks:
                destinations[k].copy_(values[k])
        else:
            self._decode_inference(plan, code, values, torch.empty(
                plan.num_elements, dtype=code.dtype, device=code.device))
            for param, value in zip(destinations, values):
                param.copy_(value)
        for module in model.modules():
            if hasattr(module, 'reset_running_stats'):
                module.reset_running_stats()
        return model

    def forward(self, model: nn.Module, **kwargs) -> nn.Module:
        """Same as :meth:`init_`."""
        return self.init_(model, **kwargs)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes weights and config to one safetensors file, atomically."""
        metadata = {'format': _FORMAT, 'format_version': str(_FORMAT_VERSION),
                    'vocabulary_version': str(VOCABULARY_VERSION),
                    'config': json.dumps(self.config),
                    'meta': json.dumps(self.meta)}
        state = {k: v.detach().contiguous().cpu()
                 for k, v in self.state_dict().items()}
        atomic_write(path, lambda tmp: save_file(state, tmp,
                                                 metadata=metadata))

    @classmethod
    def load(cls, path: Union[str, os.PathLike],
             map_location: Union[str, torch.device] = 'cpu'
             ) -> 'GraphHyperNetwork':
        """Reads a file written by :meth:`save`; refuses anything else, and
        never loads a model partially."""
        metadata, state = read_safetensors(
            path, 'GraphHyperNetwork checkpoint', file_format=_FORMAT)
        if metadata.get('format_version') != str(_FORMAT_VERSION):
            raise GhnlibError(f"'{path}' has checkpoint format "
                              f"{metadata.get('format_version')}, expected "
                              f'{_FORMAT_VERSION}')
        if metadata.get('vocabulary_version') != str(VOCABULARY_VERSION):
            raise GhnlibError(
                f"'{path}' was trained with op vocabulary version "
                f"{metadata.get('vocabulary_version')}, this ghnlib has "
                f'{VOCABULARY_VERSION}')
        try:
            config = json.loads(metadata['config'])
            ghn = cls(**config)
        except Exception as error:
            raise GhnlibError(f"'{path}' has an unusable config "
                              f'({type(error).__name__}: {error})') from error
        expected = ghn.state_dict()
        if set(state) != set(expected):
            raise GhnlibError(
                f"'{path}' does not match its config: missing "
                f'{sorted(set(expected) - set(state))[:3]}, unexpected '
                f'{sorted(set(state) - set(expected))[:3]}')
        for key, value in state.items():
            if value.shape != expected[key].shape:
                raise GhnlibError(f"'{path}': '{key}' has shape "
                                  f'{tuple(value.shape)}, the config needs '
                                  f'{tuple(expected[key].shape)}')
            if not torch.isfinite(value).all():
                raise GhnlibError(f"'{path}': '{key}' holds NaN or inf")
        ghn.load_state_dict(state)
        try:
            ghn.meta = json.loads(metadata.get('meta', '{}'))
        except ValueError as error:
            raise GhnlibError(f"'{path}' has unreadable metadata ({error})"
                              ) from error
        return ghn.to(map_location)

    @classmethod
    def pretrained(cls, name: str = 'digits-noise',
                   map_location: Union[str, torch.device] = 'cpu'
                   ) -> 'GraphHyperNetwork':
        """A GHN shipped with ghnlib: :obj:`'digits'` (deterministic) or
        :obj:`'digits-noise'` (Noise GHN), trained on scikit-learn's digits
        with ResNet-32/44/56 (see :func:`list_pretrained`)."""
        known = list_pretrained()
        if name not in known:
            raise GhnlibError(f'no pretrained GHN named {name!r}; known: '
                              f'{known}')
        return cls.load(os.path.join(PRETRAINED_DIR, f'{name}.safetensors'),
                        map_location)

    def __repr__(self) -> str:
        c = self.config
        return (f'{self.__class__.__name__}(hidden={c["hidden_channels"]}, '
                f'max_shape={tuple(c["max_shape"])}, noise_dim={c["noise_dim"]}'
                f', num_classes={c["num_classes"]})')
