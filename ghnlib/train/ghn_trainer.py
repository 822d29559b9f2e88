r"""Training a graph hypernetwork (GHN or Noise GHN) on an image dataset."""
import csv
import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ghnlib.archspace import ArchSpace
from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph, to_graph
from ghnlib.models import get_model_for_input
from ghnlib.nn.output_scale import scale_outputs_
from ghnlib.train.arch_dataset import ArchDataset
from ghnlib.train.evaluation import calibrate_batch_norm, evaluate
from ghnlib.train.ghn_loss import MetaBatchLoss
from ghnlib.utils.checkpoint import atomic_write, load_state, save_state

__all__ = ['GHNTrainingConfig', 'GHNTrainer']

CHECKPOINT = 'checkpoint.pt'
GHN_FILE = 'ghn.safetensors'
LOG_JSONL = 'log.jsonl'
LOG_CSV = 'log.csv'


@dataclasses.dataclass
class GHNTrainingConfig:
    r"""How a GHN is trained; the defaults are the paper's reduced setup on
    CIFAR-10 (supplementary, "Training the global approach").

    Args:
        archs (Sequence[str or nn.Module]): The training architectures:
            registry names or modules (whose parameter values do not
            matter). (default: ResNet-32, -44, -56)
        archs_per_step (int, optional): Distinct architectures sampled per
            step; :obj:`None` uses all of them in every step (the paper).
            When training on the space (:obj:`space_archs`), the
            architectures of :obj:`archs` are in every step and this counts
            the space's ones, per process under :obj:`torchrun` (each takes
            others), 8 by default (as GHN-2). (default: :obj:`None`)
        val_arch (str): Held-out architecture whose accuracy at
            initialisation is measured each epoch. (default: :obj:`'resnet20'`)
        epochs (int): Passes over the images. (default: :obj:`30`)
        batch_size (int): Images per step, over all processes.
            (default: :obj:`64`)
        lr (float): Adam's learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam's weight decay. (default: :obj:`0.0`)
        milestones (Sequence[int]): Epochs after which the learning rate is
            multiplied by :obj:`gamma`. (default: :obj:`(15, 20)`)
        gamma (float): Learning-rate decay. (default: :obj:`0.1`)
        grad_clip (float): Largest gradient norm. (default: :obj:`5.0`)
        noise_draws (int): Weight sets per architecture and step (Noise
            GHN only). (default: :obj:`2`)
        similarity_weight (float): :math:`\lambda` of eq. 4.
            (default: :obj:`1.0`)
        similarity_warmup (float): Epochs over which :math:`\lambda` ramps
            linearly from 0 to :obj:`similarity_weight`; 0 is the paper's
            constant weight. A Noise GHN trained from scratch (the paper
            starts its graph network from trained GHN-2 weights) can settle
            on noise-driven, chance-level weights when the similarity term
            is at full weight from the first step. (default: :obj:`0.0`)
        seed (int): Seeds the image order, the noise and the architecture
            sampling: a step's randomness depends on (seed, epoch, step)
            only, so a resumed run repeats an uninterrupted one.
            (default: :obj:`0`)
        max_steps_per_epoch (int, optional): Cut epochs short (for quick
            runs). (default: :obj:`None`)
        checkpoint_every (int, optional): Also checkpoint every this many
            steps within an epoch. (default: :obj:`None`)
        amp (bool): Mixed precision (bfloat16 autocast) on CUDA; ignored on
            CPU. (default: :obj:`True`)
        calibration_batches (int): Training batches used to recompute the
            batch-norm statistics of the validation architecture before it
            is evaluated (weights untouched). (default: :obj:`4`)
        space_archs (int): Architectures drawn from the architecture space
            (:class:`~ghnlib.archspace.ArchSpace`, seeds :obj:`space_seed`
            on, at the dataset's input size) and trained on next to
            :obj:`archs`; their graphs are converted once and cached
            (:class:`~ghnlib.train.ArchDataset`). 0 trains on :obj:`archs`
            only. (default: :obj:`0`)
        space_seed (int): First seed of the space's architectures.
            (default: :obj:`0`)
        space_width (Sequence[int]): Range of the space's channel counts.
            (default: :obj:`(16, 48)`)
        space_depth (Sequence[int]): Range of the space's number of cells
            and token blocks. (default: :obj:`(2, 6)`)
        space_max_params (int): Parameter budget of a space architecture.
            (default: :obj:`250_000`)
        graph_cache (str, optional): Folder of the space's graph cache.
            (default: :obj:`None`, :obj:`graphs` in the output folder, or
            in memory only without one)
        scale_outputs (bool): Scale every predicted weight layer to unit
            output standard deviation on the step's images before the loss
            (:class:`~ghnlib.train.MetaBatchLoss`), and likewise the
            validation architecture before it is measured; for training on
            architectures without batch norm. (default: :obj:`False`)
        logit_scale (float, optional): :math:`\tau` of the loss on
            scale-free logits (:class:`~ghnlib.train.MetaBatchLoss`);
            :obj:`None` for the logits as they are. (default: :obj:`None`)
    """
    archs: Sequence[str] = ('resnet32', 'resnet44', 'resnet56')
    archs_per_step: Optional[int] = None
    val_arch: str = 'resnet20'
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    milestones: Sequence[int] = (15, 20)
    gamma: float = 0.1
    grad_clip: float = 5.0
    noise_draws: int = 2
    similarity_weight: float = 1.0
    similarity_warmup: float = 0.0
    seed: int = 0
    max_steps_per_epoch: Optional[int] = None
    checkpoint_every: Optional[int] = None
    amp: bool = True
    calibration_batches: int = 4
    space_archs: int = 0
    space_seed: int = 0
    space_width: Sequence[int] = (16, 48)
    space_depth: Sequence[int] = (2, 6)
    space_max_params: int = 250_000
    graph_cache: Optional[str] = None
    scale_outputs: bool = False
    logit_scale: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """The config as JSON values (modules by their class name)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out['archs'] = [a if isinstance(a, str) else type(a).__name__
                        for a in self.archs]
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in out.items()}


def _seeded(*keys: int) -> torch.Generator:
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + int(key)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class GHNTrainer:
    r"""Trains a :class:`~ghnlib.GraphHyperNetwork` with
    :class:`~ghnlib.train.ghn_loss.MetaBatchLoss`: Adam, multi-step decay,
    gradient clipping; a step whose loss or gradients are not finite is
    skipped and counted. Each epoch ends with the held-out architecture's
    accuracy at initialisation, a log line (:obj:`log.jsonl`,
    :obj:`log.csv`), the GHN (:obj:`ghn.safetensors`) and the full
    training state (:obj:`checkpoint.pt`), both written atomically.

    Under :obj:`torchrun` (an initialised :mod:`torch.distributed` process
    group), the loss is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel`: the architectures
    and the noise are the same on every process, the images of a step are
    sharded, and only rank 0 writes files.

    Args:
        ghn (GraphHyperNetwork): The GHN to train (in place).
        train_set (Dataset): Items :obj:`(image, label)`.
        val_set (Dataset): Items for the held-out architecture's accuracy.
        config (GHNTrainingConfig, optional): The recipe.
            (default: :obj:`GHNTrainingConfig()`)
        out_dir (str, optional): Where checkpoints and logs go; :obj:`None`
            writes nothing. (default: :obj:`None`)
        device (str or torch.device, optional): (default: :obj:`'cpu'`)
        progress (bool, optional): Show a tqdm bar. (default: :obj:`True`)
    """
    def __init__(self, ghn: nn.Module, train_set: Dataset, val_set: Dataset,
                 config: Optional[GHNTrainingConfig] = None, *,
                 out_dir: Optional[Union[str, os.PathLike]] = None,
                 device: Union[str, torch.device] = 'cpu',
                 progress: bool = True):
        self.config = config = config or GHNTrainingConfig()
        if len(train_set) == 0 or len(val_set) == 0:
            raise GhnlibError('the training and validation sets must not be '
                              'empty')
        if config.epochs < 1 or config.batch_size < 1:
            raise GhnlibError(f'epochs and batch_size must be positive, got '
                              f'{config.epochs} and {config.batch_size}')
        self.device = torch.device(device)
        self.ghn = ghn.to(self.device)
        self.train_set, self.val_set = train_set, val_set
        self.out_dir = os.fspath(out_dir) if out_dir is not None else None
        self.progress = progress
        self.rank, self.world_size = 0, 1
        if dist.is_available() and dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if config.batch_size % self.world_size:
            raise GhnlibError(f'batch_size {config.batch_size} does not split '
                              f'over {self.world_size} processes')

        image = train_set[0][0]
        self.input_shape = (1, ) + tuple(image.shape)
        if config.space_archs < 0:
            raise GhnlibError(f'space_archs must be 0 or more, got '
                              f'{config.space_archs}')
        if not config.archs and config.space_archs == 0:
            raise GhnlibError('no training architectures: give archs, '
                              'space_archs, or both')
        self.models = [self._build(name) for name in config.archs]
        self.graphs = [to_graph(m, input_shape=self.input_shape,
                                ve_cutoff=ghn.ve_cutoff) for m in self.models]
        self.space = self._space_dataset(image) if config.space_archs else None
        self.ghn.meta = {**self.ghn.meta, **self._recipe_meta(train_set, image)}
        self.val_model = self._build(config.val_arch)
        self.val_graph = to_graph(self.val_model, input_shape=self.input_shape,
                                  ve_cutoff=ghn.ve_cutoff)
        self.skipped_out_of_memory = 0
        self._losses: Dict[tuple, nn.Module] = {}

        self.optimizer = torch.optim.Adam(ghn.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(config.milestones),
            gamma=config.gamma)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.skipped_steps = 0
        self.history: List[Dict[str, Any]] = []
        self._running = self._new_running()

    def _space_dataset(self, image: Tensor) -> ArchDataset:
        config = self.config
        if image.dim() != 3 or image.shape[-1] != image.shape[-2]:
            raise GhnlibError(f'training on the architecture space needs '
                              f'square (C, H, W) images, got '
                              f'{tuple(image.shape)}')
        space = ArchSpace(in_channels=int(image.shape[0]),
                          num_classes=self.ghn.num_classes,
                          input_size=int(image.shape[-1]),
                          width=tuple(config.space_width),
                          depth=tuple(config.space_depth),
                          max_params=config.space_max_params)
        cache = config.graph_cache
        if cache is None and self.out_dir is not None:
            cache = os.path.join(self.out_dir, 'graphs')
        recipes = space.sample_recipes(config.space_archs, config.space_seed)
        return ArchDataset(recipes, cache if self.rank == 0 else None,
                           input_shape=self.input_shape,
                           ve_cutoff=self.ghn.ve_cutoff,
                           progress=self.progress and self.rank == 0)

    def _recipe_meta(self, train_set: Dataset, image: Tensor) -> Dict[str, Any]:
        """What the GHN is trained for, carried in its file (:attr:`~ghnlib.
        GraphHyperNetwork.meta`): the data recipe, the architectures, the
        loss options."""
        config = self.config
        data: Dict[str, Any] = {'dataset': getattr(train_set, 'name', None)
                                or type(train_set).__name__,
                                'channels': int(image.shape[0])}
        if image.dim() == 3 and image.shape[-1] == image.shape[-2]:
            data['image_size'] = int(image.shape[-1])
        mean, std = getattr(train_set, 'mean', None), getattr(
            train_set, 'std', None)
        if mean is not None and std is not None and 'image_size' in data:
            data['mean'], data['std'] = list(mean), list(std)
        else:
            data.pop('image_size', None)  # no full recipe to transform with
        meta: Dict[str, Any] = {
            'data': data if 'image_size' in data else {},
            'archs': config.to_dict()['archs'],
            'val_arch': config.val_arch,
            'scale_outputs': config.scale_outputs,
            'logit_scale': config.logit_scale,
        }
        if self.space is not None:
            meta['space'] = {'in_channels': int(image.shape[0]),
                             'num_classes': self.ghn.num_classes,
                             'input_size': int(image.shape[-1]),
                             'width': list(config.space_width),
                             'depth': list(config.space_depth),
                             'max_params': config.space_max_params}
            meta['space_archs'] = {'count': config.space_archs,
                                   'first_seed': config.space_seed}
        return meta

    @property
    def num_archs(self) -> int:
        """How many training architectures there are: the named ones, then
        those of the space."""
        return len(self.models) + (len(self.space) if self.space else 0)

    def _arch(self, index: int) -> Tuple[nn.Module, ArchGraph]:
        if index < len(self.models):
            return self.models[index], self.graphs[index]
        index -= len(self.models)
        return self.space.model(index, self.device), self.space.graph(index)

    def _build(self, name: Union[str, nn.Module]) -> nn.Module:
        if isinstance(name, nn.Module):
            return name.to(self.device).train()
        try:
            model = get_model_for_input(name, self.input_shape)
        except KeyError as error:
            raise GhnlibError(str(error)) from None
        return model.to(self.device).train()

    # -- one step --------------------------------------------------------
    def _loss_for(self, arch_ids: Sequence[int]) -> nn.Module:
        if self.space is not None:
            # Fresh networks each step: a space is too large to keep them,
            # and every process has its own, so gradients are averaged by
            # hand (:meth:`_average_gradients`) rather than by DDP.
            models, graphs = zip(*(self._arch(i) for i in arch_ids))
            return MetaBatchLoss(self.ghn, models, graphs,
                                 self.config.noise_draws,
                                 self.config.similarity_weight,
                                 self.config.scale_outputs,
                                 self.config.logit_scale)
        key = tuple(arch_ids)
        if key not in self._losses:
            loss = MetaBatchLoss(self.ghn, [self.models[i] for i in key],
                                 [self.graphs[i] for i in key],
                                 self.config.noise_draws,
                                 self.config.similarity_weight,
                                 self.config.scale_outputs,
                                 self.config.logit_scale)
            if self.world_size > 1:
                loss = nn.parallel.DistributedDataParallel(
                    loss, find_unused_parameters=True)
            self._losses[key] = loss
        return self._losses[key]

    def _step_randomness(self) -> tuple:
        config = self.config
        generator = _seeded(config.seed, 1, self.global_step)
        per_step = config.archs_per_step
        if self.space is None:
            arch_ids = list(range(self.num_archs))
            if per_step is not None and per_step < len(arch_ids):
                order = torch.randperm(len(arch_ids), generator=generator)
                arch_ids = sorted(order[:per_step].tolist())
        else:
            # With a space, the named architectures are in every step (as
            # the paper's reduced setup) and archs_per_step counts the
            # space's share; under torchrun each process takes its own part
            # of one draw, so no two train on the same architecture.
            per_step = 8 if per_step is None else per_step
            share = self.world_size
            take = min(len(self.space), per_step * share)
            order = torch.randperm(len(self.space), generator=generator)[:take]
            mine = order[self.rank::share] if share > 1 else order
            arch_ids = list(range(len(self.models))) + sorted(
                len(self.models) + i for i in mine.tolist())
        noise = None
        if self.ghn.noise_dim > 0:
            draws = max(1, config.noise_draws)
            noise = torch.randn(draws * len(arch_ids),
                                self.ghn.noise_dim, generator=generator)
        return arch_ids, noise

    def similarity_weight(self) -> float:
        """:math:`\\lambda` at the current step (see
        :obj:`GHNTrainingConfig.similarity_warmup`)."""
        config = self.config
        if config.similarity_warmup <= 0:
            return config.similarity_weight
        steps = config.similarity_warmup * self.steps_per_epoch
        return config.similarity_weight * min(1.0, self.global_step / steps)

    def train_step(self, images: Tensor, labels: Tensor) -> Dict[str, float]:
        """One optimisation step on a batch (this process's shard). A step
        whose loss or gradients are not finite, or that runs out of memory,
        changes nothing and is counted in :obj:`skipped_steps`."""
        arch_ids, noise = self._step_randomness()
        images, labels = images.to(self.device), labels.to(self.device)
        self.ghn.train()
        self.optimizer.zero_grad(set_to_none=True)
        amp = self.config.amp and self.device.type == 'cuda'
        stats, finite = {}, False
        try:
            loss_fn = self._loss_for(arch_ids)
            getattr(loss_fn, 'module', loss_fn).similarity_weight = \
                self.similarity_weight()
            with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                enabled=amp):
                loss, stats = loss_fn(images, labels, noise)
            finite = self._agree(bool(torch.isfinite(loss)))
            if finite:
                loss.backward()
        except torch.OutOfMemoryError:
            self.skipped_out_of_memory += 1
            finite = self._agree(False)
        if finite and self.space is not None and self.world_size > 1:
            self._average_gradients()
        if finite:
            norm = torch.nn.utils.clip_grad_norm_(self.ghn.parameters(),
                                                  self.config.grad_clip)
            finite = bool(torch.isfinite(norm))
        if finite:
            self.optimizer.step()
        else:
            self.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        out = {k: float(v) for k, v in stats.items()}
        for key in ('loss', 'cross_entropy', 'similarity', 'accuracy'):
            out.setdefault(key, float('nan'))
        out['skipped'] = float(not finite)
        return out

    def _agree(self, ok: bool) -> bool:
        """Whether every process can go on with the step: they must all take
        the same decision, or collective calls would deadlock."""
        if self.world_size == 1:
            return ok
        flag = torch.tensor([float(ok)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _average_gradients(self) -> None:
        grads = []
        for param in self.ghn.parameters():
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            grads.append(param.grad)
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    # -- epochs ----------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        steps = max(1, len(self.train_set) // self.config.batch_size)
        if self.config.max_steps_per_epoch is not None:
            steps = min(steps, self.config.max_steps_per_epoch)
        return steps

    def _batches(self, epoch: int) -> List[Tensor]:
        """The image indices of every step of an epoch, for this process."""
        size = self.config.batch_size
        order = torch.randperm(len(self.train_set),
                               generator=_seeded(self.config.seed, 0, epoch))
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        if len(batches) > 1 and len(batches[-1]) < size:
            batches.pop()  # equal-sized steps, as DistributedSampler does
        if self.config.max_steps_per_epoch is not None:
            batches = batches[:self.config.max_steps_per_epoch]
        return [b[self.rank::self.world_size] for b in batches]

    @staticmethod
    def _new_running() -> Dict[str, float]:
        return {'loss': 0.0, 'cross_entropy': 0.0, 'similarity': 0.0,
                'accuracy': 0.0, 'steps': 0}

    def validate(self) -> float:
        """Accuracy of the held-out architecture initialised by the GHN
        (fixed noise for a Noise GHN), after recomputing its batch-norm
        statistics on a few training batches; no weight is trained."""
        generator = _seeded(self.config.seed, 2)
        self.ghn.eval()
        self.ghn.init_(self.val_model, generator=generator,
                       graph=self.val_graph)
        loader = DataLoader(self.train_set, batch_size=self.config.batch_size,
                            shuffle=True, generator=_seeded(self.config.seed, 3))
        if self.config.scale_outputs:
            images = next(iter(loader))[0].to(self.device)
            scale_outputs_(self.val_model.train(), images)
        calibrate_batch_norm(self.val_model, loader,
                             self.config.calibration_batches)
        return evaluate(self.val_model, self.val_set, device=self.device).accuracy

    def fit(self, resume: bool = False) -> List[Dict[str, Any]]:
        """Trains until :obj:`config.epochs`, continuing from the checkpoint
        in :obj:`out_dir` when :obj:`resume` is set; returns the per-epoch
        log."""
        if resume:
            if self.out_dir is None:
                raise GhnlibError('resume needs an out_dir to read from')
            path = os.path.join(self.out_dir, CHECKPOINT)
            if os.path.exists(path):
                self.load_state_dict(load_state(path, 'GHN training checkpoint'))
        elif self.out_dir is not None and os.path.exists(
                os.path.join(self.out_dir, CHECKPOINT)):
            raise GhnlibError(f"'{self.out_dir}' already holds a training "
                              'run: pass resume=True (--resume) to continue '
                              'it or choose another directory')
        from tqdm.auto import tqdm

        config = self.config
        while self.epoch < config.epochs:
            batches = self._batches(self.epoch)
            bar = tqdm(total=len(batches), initial=self.step_in_epoch,
                       desc=f'epoch {self.epoch + 1}/{config.epochs}',
                       disable=not self.progress or self.rank != 0,
                       leave=False)
            start = time.perf_counter()
            while self.step_in_epoch < len(batches):
                images, labels = self._fetch(batches[self.step_in_epoch])
                stats = self.train_step(images, labels)
                self.step_in_epoch += 1
                if not stats['skipped']:
                    running = self._running
                    for key in ('loss', 'cross_entropy', 'similarity',
                                'accuracy'):
                        running[key] += stats[key]
                    running['steps'] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}",
                                acc=f"{stats['accuracy']:.3f}")
                every = config.checkpoint_every
                if every and self.step_in_epoch % every == 0 and \
                        self.step_in_epoch < len(batches):
                    self._checkpoint()
            bar.close()
            self._end_epoch(time.perf_counter() - start)
        return self.history

    def _fetch(self, indices: Tensor):
        indices = indices.tolist()
        if hasattr(self.train_set, '__getitems__'):
            items = self.train_set.__getitems__(indices)
        else:
            items = [self.train_set[i] for i in indices]
        images = torch.stack([torch.as_tensor(x) for x, _ in items])
        labels = torch.as_tensor([int(y) for _, y in items])
        return images, labels

    def _end_epoch(self, seconds: float) -> None:
        running, steps = self._running, max(1, self._running['steps'])
        val_accuracy = self.validate()
        self.scheduler.step()
        entry = {'epoch': self.epoch + 1, 'step': self.global_step,
                 'lr': self.optimizer.param_groups[0]['lr'],
                 'train_loss': running['loss'] / steps,
                 'train_cross_entropy': running['cross_entropy'] / steps,
                 'train_similarity': running['similarity'] / steps,
                 'train_accuracy': running['accuracy'] / steps,
                 'val_arch': self.config.val_arch,
                 'val_accuracy': val_accuracy,
                 'skipped_steps': self.skipped_steps,
                 'skipped_out_of_memory': self.skipped_out_of_memory,
                 'seconds': seconds}
        self.history.append(entry)
        self.ghn.meta['accuracy'] = {
            'val_arch': self.config.val_arch, 'val_accuracy': val_accuracy,
            'epoch': entry['epoch'],
            'measured': 'held-out split, no training step, batch-norm '
                        'statistics from a few training batches'}
        self.epoch += 1
        self.step_in_epoch = 0
        self._running = self._new_running()
        if self.rank == 0 and self.progress:
            from tqdm.auto import tqdm
            tqdm.write(f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}"
                       f", train acc {entry['train_accuracy']:.3f}, "
                       f"{self.config.val_arch} acc at init {val_accuracy:.3f}"
                       f", skipped {self.skipped_steps}")
        self._checkpoint()

    # -- state -----------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        state = {'format': 'ghnlib.GHNTrainer', 'version': 1,
                 'config': self.config.to_dict(),
                 'ghn_config': dict(self.ghn.config),
                 'ghn': {k: v.detach().cpu().clone()
                         for k, v in self.ghn.state_dict().items()},
                 'optimizer': self.optimizer.state_dict(),
                 'scheduler': self.scheduler.state_dict(),
                 'epoch': self.epoch, 'step_in_epoch': self.step_in_epoch,
                 'global_step': self.global_step,
                 'skipped_steps': self.skipped_steps,
                 'skipped_out_of_memory': self.skipped_out_of_memory,
                 'running': dict(self._running),
                 'history': json.dumps(self.history),
                 'torch_rng': torch.get_rng_state()}
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restores a :meth:`state_dict`; refuses one of another run."""
        if not isinstance(state, dict) or state.get('format') != \
                'ghnlib.GHNTrainer':
            raise GhnlibError('not a GHN training checkpoint')
        mine = self.config.to_dict()
        theirs = state['config']
        # The length of a run may change on resume; the recipe may not.
        changed = sorted(k for k in mine if k not in ('epochs',)
                         and mine[k] != theirs.get(k))
        if changed or dict(self.ghn.config) != state['ghn_config']:
            raise GhnlibError(
                f'the checkpoint was written by a different run (differs in '
                f"{changed or ['the GHN config']}): resume with the same "
                'options or start a new directory')
        ghn_state = state['ghn']
        for key, value in ghn_state.items():
            if not torch.isfinite(value).all():
                raise GhnlibError(f"checkpoint holds NaN or inf in '{key}'")
        self.ghn.load_state_dict(ghn_state)
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.epoch = state['epoch']
        self.step_in_epoch = state['step_in_epoch']
        self.global_step = state['global_step']
        self.skipped_steps = state['skipped_steps']
        self.skipped_out_of_memory = state.get('skipped_out_of_memory', 0)
        self._running = dict(state['running'])
        self.history = json.loads(state['history'])
        torch.set_rng_state(state['torch_rng'])

    def _checkpoint(self) -> None:
        if self.out_dir is None or self.rank != 0:
            return
        for name, value in self.ghn.state_dict().items():
            if not torch.isfinite(value).all():
                raise GhnlibError(
                    f"the GHN's '{name}' holds NaN or inf; the last good "
                    f'checkpoint in {self.out_dir} is kept')
        os.makedirs(self.out_dir, exist_ok=True)
        self.ghn.save(os.path.join(self.out_dir, GHN_FILE))
        save_state(self.state_dict(), os.path.join(self.out_dir, CHECKPOINT))
        self._write_logs()

    def _write_logs(self) -> None:
        """Writes the per-epoch log files whole from the history, so that a
        resumed run never repeats or loses a line."""
        if not self.history:
            return
        lines = ''.join(json.dumps(entry) + '\n' for entry in self.history)

        def write_jsonl(tmp):
            with open(tmp, 'w') as handle:
                handle.write(lines)

        def write_csv(tmp):
            with open(tmp, 'w', newline='') as handle:
                writer = csv.DictWriter(handle, fieldnames=list(self.history[0]))
                writer.writeheader()
                writer.writerows(self.history)

        atomic_write(os.path.join(self.out_dir, LOG_JSONL), write_jsonl)
        atomic_write(os.path.join(self.out_dir, LOG_CSV), write_csv)
