r"""The plain SGD recipe for training the networks whose initialisation is
evaluated, from the `"From Pointwise to Powerhouse: Initialising Neural
Networks with Generative Models" <https://arxiv.org/abs/2310.16695>`_ paper."""
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ghnlib.errors import GhnlibError
from ghnlib.train.evaluation import calibrate_batch_norm, evaluate

__all__ = ['SGDRecipe', 'TrainingHistory', 'lr_schedule', 'train_network',
           'check_model_accepts']

MILESTONE_UNITS = ('epoch', 'step')


@dataclass(frozen=True)
class SGDRecipe:
    r"""SGD with momentum and a piecewise-constant learning rate, the recipe
    of the `"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_ paper (supplementary) for the
    networks it initialises:

    .. math::
        \eta_t = \eta_0 \prod_{i \,:\, t \geq m_i} \gamma_i

    after :math:`t` optimizer steps, with milestones :math:`m_i` and factors
    :math:`\gamma_i`. The defaults are its CIFAR-10 recipe
    (:meth:`cifar10`); :meth:`pcam` gives its PCam one. No data
    augmentation.

    Args:
        lr (float, optional): Initial learning rate :math:`\eta_0`.
            (default: :obj:`0.1`)
        momentum (float, optional): SGD momentum. (default: :obj:`0.9`)
        weight_decay (float, optional): L2 penalty on every parameter.
            (default: :obj:`1e-4`)
        batch_size (int, optional): Training batch size.
            (default: :obj:`128`)
        epochs (int, optional): Passes over the training set.
            (default: :obj:`120`)
        milestones (Sequence[int], optional): Increasing epochs (or steps)
            :math:`m_i` at which the rate is multiplied by the matching
            factor. (default: :obj:`(80, 100)`)
        factors (Sequence[float], optional): The factors :math:`\gamma_i`.
            (default: :obj:`(0.2, 0.5)`)
        milestone_unit (str, optional): :obj:`'epoch'` or :obj:`'step'`
            (optimizer steps); epoch milestones take effect at the first step
            of that epoch. (default: :obj:`'epoch'`)
    """
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int = 120
    milestones: Tuple[int, ...] = (80, 100)
    factors: Tuple[float, ...] = (0.2, 0.5)
    milestone_unit: str = 'epoch'

    def __post_init__(self):
        object.__setattr__(self, 'milestones', tuple(self.milestones))
        object.__setattr__(self, 'factors', tuple(self.factors))
        problems = []
        if not self.lr > 0:
            problems.append(f'lr must be > 0, got {self.lr}')
        if not 0 <= self.momentum < 1:
            problems.append(f'momentum must be in [0, 1), got {self.momentum}')
        if not self.weight_decay >= 0:
            problems.append(f'weight_decay must be >= 0, got '
                            f'{self.weight_decay}')
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            problems.append(f'batch_size must be a positive int, got '
                            f'{self.batch_size!r}')
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            problems.append(f'epochs must be a positive int, got '
                            f'{self.epochs!r}')
        if len(self.milestones) != len(self.factors):
            problems.append(f'milestones {self.milestones} and factors '
                            f'{self.factors} must have the same length')
        if any(not isinstance(m, int) or m < 1 for m in self.milestones) or \
                list(self.milestones) != sorted(set(self.milestones)):
            problems.append(f'milestones must be strictly increasing '
                            f'positive ints, got {self.milestones}')
        if self.milestone_unit not in MILESTONE_UNITS:
            problems.append(f"milestone_unit must be 'epoch' or 'step', got "
                            f'{self.milestone_unit!r}')
        if problems:
            raise GhnlibError('invalid SGDRecipe: ' + '; '.join(problems))

    @classmethod
    def cifar10(cls, **overrides) -> 'SGDRecipe':
        r"""The paper's CIFAR-10 recipe: 120 epochs, the rate divided by 5
        after 80 epochs and by 2 after 100.

        Args:
            **overrides (optional): Fields to change, *e.g.*,
                :obj:`epochs=10`.
        """
        return cls(**{**dict(epochs=120, milestones=(80, 100),
                             factors=(0.2, 0.5), milestone_unit='epoch'),
                      **overrides})

    @classmethod
    def pcam(cls, **overrides) -> 'SGDRecipe':
        r"""The paper's PCam recipe: 10 epochs, the rate divided by 5 after
        7,200 batches and by 2 after 8,400.

        Args:
            **overrides (optional): Fields to change.
        """
        return cls(**{**dict(epochs=10, milestones=(7200, 8400),
                             factors=(0.2, 0.5), milestone_unit='step'),
                      **overrides})

    def replace(self, **changes) -> 'SGDRecipe':
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def milestone_steps(self, steps_per_epoch: int) -> Tuple[int, ...]:
        """The milestones in optimizer steps."""
        if self.milestone_unit == 'step':
            return self.milestones
        return tuple(m * steps_per_epoch for m in self.milestones)

    def lr_factor(self, step: int, steps_per_epoch: int) -> float:
        r"""The multiplier :math:`\eta_t / \eta_0` after :obj:`step` optimizer
        steps."""
        factor = 1.0
        for milestone, gamma in zip(self.milestone_steps(steps_per_epoch),
                                    self.factors):
            if step >= milestone:
                factor *= gamma
        return factor


def lr_schedule(optimizer: torch.optim.Optimizer, recipe: SGDRecipe,
                steps_per_epoch: int) -> LambdaLR:
    r"""The learning-rate schedule of :obj:`recipe`, to be stepped after
    every optimizer step.

    Args:
        optimizer (torch.optim.Optimizer): Its initial rates are
            :math:`\eta_0`.
        recipe (SGDRecipe): Milestones and factors.
        steps_per_epoch (int): Batches per epoch, to convert epoch
            milestones.
    """
    if not (isinstance(steps_per_epoch, int) and steps_per_epoch >= 1):
        raise GhnlibError(f'steps_per_epoch must be a positive int, got '
                          f'{steps_per_epoch!r}')
    return LambdaLR(optimizer,
                    lambda step: recipe.lr_factor(step, steps_per_epoch))


@dataclass
class TrainingHistory:
    r"""What :func:`train_network` measured, one entry per evaluation.

    Args:
        steps (List[int]): Optimizer steps done at each evaluation; the
            first is 0, the initialisation itself.
        val_accuracy (List[float]): Validation accuracy in :math:`[0, 1]`.
        val_loss (List[float]): Mean validation cross-entropy.
        train_loss (List[float]): Mean training loss of the steps since the
            previous evaluation (:obj:`nan` at step 0).
        learning_rate (List[float]): The rate the next update would use.
        best_step (int): Step of the highest validation accuracy (the
            earliest on ties).
        best_val_accuracy (float): That accuracy.
        best_state (Dict[str, Tensor]): A CPU copy of the model's
            :obj:`state_dict` at :obj:`best_step`.
        seconds (float): Wall-clock time of the whole run, evaluations
            included.
    """
    steps: List[int] = field(default_factory=list)
    val_accuracy: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    learning_rate: List[float] = field(default_factory=list)
    best_step: int = 0
    best_val_accuracy: float = -math.inf
    best_state: Dict[str, torch.Tensor] = field(default_factory=dict,
                                                repr=False)
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """Everything but :obj:`best_state`, JSON-serialisable (:obj:`nan`
        becomes :obj:`None`)."""
        return {
            'steps': list(self.steps),
            'val_accuracy': [_finite_or_none(v) for v in self.val_accuracy],
            'val_loss': [_finite_or_none(v) for v in self.val_loss],
            'train_loss': [_finite_or_none(v) for v in self.train_loss],
            'learning_rate': list(self.learning_rate),
            'best_step': self.best_step,
            'best_val_accuracy': _finite_or_none(self.best_val_accuracy),
            'seconds': self.seconds,
        }


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _cpu_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    return {name: value.detach().to('cpu', copy=True)
            for name, value in model.state_dict().items()}


def check_model_accepts(model: nn.Module, dataset: Dataset,
                        device: Union[str, torch.device] = 'cpu') -> None:
    """Runs :obj:`model` (in eval mode, without gradients) on the first
    image of :obj:`dataset` and raises a :class:`GhnlibError` naming both
    shapes if it does not take it, or gives no logits for every class,
    instead of failing in the middle of training.

    Raises:
        GhnlibError: If the model does not accept the dataset's images.
    """
    image, _ = dataset[0]
    num_classes = getattr(dataset, 'num_classes', None)
    name = type(model).__name__
    was_training = model.training
    try:
        with torch.no_grad():
            logits = model.eval()(image.unsqueeze(0).to(device))
    except Exception as error:  # noqa: BLE001 - any failure is reported
        raise GhnlibError(
            f'the model ({name}) does not accept this dataset\'s images of '
            f'shape {tuple(image.shape)} ({type(error).__name__}: {error}); '
            f'build it for that input (e.g. in_channels / input_size), or '
            f'convert the data to what it expects (--image-size, '
            f'--channels)') from error
    finally:
        model.train(was_training)
    if num_classes is not None and (logits.dim() != 2
                                    or logits.size(1) != num_classes):
        raise GhnlibError(
            f'the model ({name}) gives outputs of shape '
            f'{tuple(logits.shape)} for one image, but the dataset has '
            f'{num_classes} classes: build it with num_classes={num_classes}')


def train_network(model: nn.Module, train_set: Dataset, val_set: Dataset, *,
                  recipe: SGDRecipe = SGDRecipe(),
                  eval_every: Optional[int] = None,
                  max_steps: Optional[int] = None,
                  keep_best: bool = False,
                  device: Union[str, torch.device] = 'cpu',
                  seed: int = 0,
                  num_workers: int = 0,
                  calibration_batches: int = 4,
                  progress: bool = True,
                  log_path: Optional[Union[str, os.PathLike]] = None,
                  on_evaluation: Optional[Callable[[int, nn.Module], None]]
                  = None) -> TrainingHistory:
    r"""Trains :obj:`model` in place with :obj:`recipe` (cross-entropy, SGD,
    :func:`lr_schedule`) and evaluates it on :obj:`val_set` along the way.

    Evaluations happen at step 0 (the initialisation, before any update),
    every :obj:`eval_every` steps and after the last step. The weights with
    the best validation accuracy are kept in the returned history. A
    non-finite training loss stops training with an error: the network
    diverged.

    Args:
        model (nn.Module): A classifier returning logits :math:`[B, C]`,
            already initialised.
        train_set (Dataset): Items :obj:`(image, label)`, shuffled each
            epoch.
        val_set (Dataset): Items :obj:`(image, label)`.
        recipe (SGDRecipe, optional): The optimiser and schedule.
            (default: :obj:`SGDRecipe()`, the CIFAR-10 recipe)
        eval_every (int, optional): Steps between evaluations.
            (default: :obj:`None`, once per epoch)
        max_steps (int, optional): Stop after this many optimizer steps, if
            earlier than :obj:`recipe.epochs`; the schedule is unchanged.
            (default: :obj:`None`)
        keep_best (bool, optional): Load the best weights back into
            :obj:`model` at the end; otherwise it keeps its last weights,
            which is what the paper reports. (default: :obj:`False`)
        device (str or torch.device, optional): Where to train; the model is
            moved there. (default: :obj:`'cpu'`)
        seed (int, optional): Seeds the shuffling and every random op of the
            training step (*e.g.*, dropout); the global generator is
            restored afterwards. (default: :obj:`0`)
        num_workers (int, optional): Data-loading worker processes.
            (default: :obj:`0`)
        calibration_batches (int, optional): Before the step-0 evaluation,
            batch-norm running statistics are recomputed on this many
            training batches (:func:`~ghnlib.train.evaluation.calibrate_batch_norm`):
            an initialisation's accuracy is then measured with statistics of
            the data, not the reset ones (mean 0, variance 1). No weight
            changes, and training-mode steps do not read these statistics.
            0 evaluates with the statistics as they are. (default: :obj:`4`)
        progress (bool, optional): Show a progress bar with the training
            loss and the last validation accuracy. (default: :obj:`True`)
        log_path (str, optional): A JSON-lines file that gets one object per
            evaluation (:obj:`step`, :obj:`epoch`, :obj:`val_accuracy`,
            :obj:`val_loss`, :obj:`train_loss`, :obj:`lr`,
            :obj:`seconds`), appended and flushed as it happens.
            (default: :obj:`None`)
        on_evaluation (Callable, optional): Called as
            :obj:`on_evaluation(step, model)` after every evaluation (step 0
            included), *e.g.*, to keep per-epoch checkpoints; it must not
            change the model. (default: :obj:`None`)

    Raises:
        GhnlibError: If an argument is invalid, :obj:`train_set` is empty,
            or the training loss becomes :obj:`nan` or :obj:`inf`.
    """
    if not isinstance(recipe, SGDRecipe):
        raise GhnlibError(f'recipe must be an SGDRecipe, got '
                          f'{type(recipe).__name__}')
    for name, value, minimum in (('eval_every', eval_every, 1),
                                 ('max_steps', max_steps, 0)):
        if value is not None and not (isinstance(value, int)
                                      and value >= minimum):
            raise GhnlibError(f'{name} must be None or an int >= {minimum}, '
                              f'got {value!r}')
    if len(train_set) == 0:
        raise GhnlibError('train_set is empty: pass a dataset with at least '
                          'one (image, label) item')
    device = torch.device(device)
    model.to(device)
    check_model_accepts(model, train_set, device)

    shuffle_generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True,
                        generator=shuffle_generator, num_workers=num_workers,
                        pin_memory=device.type == 'cuda')
    steps_per_epoch = len(loader)
    total_steps = recipe.epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    eval_every = eval_every or steps_per_epoch

    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr,
                                momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    scheduler = lr_schedule(optimizer, recipe, steps_per_epoch)
    history = TrainingHistory()
    start = time.perf_counter()
    bar = tqdm(total=total_steps, disable=not progress, unit='step',
               dynamic_ncols=True)
    losses: List[float] = []
    postfix: Dict[str, str] = {}
    was_training = model.training

    def record(step: int) -> None:
        result = evaluate(model, val_set, device=device)
        train_loss = sum(losses) / len(losses) if losses else math.nan
        losses.clear()
        lr = optimizer.param_groups[0]['lr']
        history.steps.append(step)
        history.val_accuracy.append(result.accuracy)
        history.val_loss.append(result.loss)
        history.train_loss.append(train_loss)
        history.learning_rate.append(lr)
        if result.accuracy > history.best_val_accuracy:
            history.best_step = step
            history.best_val_accuracy = result.accuracy
            history.best_state = _cpu_state(model)
        if log_path is not None:
            entry = dict(step=step, epoch=step / steps_per_epoch,
                         val_accuracy=result.accuracy,
                         val_loss=_finite_or_none(result.loss),
                         train_loss=_finite_or_none(train_loss), lr=lr,
                         seconds=time.perf_counter() - start)
            _append_line(log_path, entry)
        postfix['val_acc'] = f'{result.accuracy:.4f}'
        bar.set_postfix(postfix, refresh=False)
        if on_evaluation is not None:
            on_evaluation(step, model)

    devices = [device] if device.type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            calibrate_batch_norm(model, DataLoader(
                train_set, batch_size=recipe.batch_size, shuffle=True,
                generator=torch.Generator().manual_seed(seed + 1)),
                calibration_batches)
            record(0)
            step = 0
            model.train()
            while step < total_steps:
                for images, labels in loader:
                    images = images.to(device, non_blocking=True)
                    labels = labels.to(device, non_blocking=True)
                    loss = F.cross_entropy(model(images), labels)
                    value = loss.item()
                    if not math.isfinite(value):
                        raise GhnlibError(
                            f'the training loss is {value} at step {step} '
                            f'(epoch {step // steps_per_epoch}): the network '
                            f'diverged; lower the learning rate '
                            f"(now {optimizer.param_groups[0]['lr']:g}) or "
                            'check the initialisation and the data')
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    losses.append(value)
                    bar.update()
                    postfix['loss'] = f'{value:.4f}'
                    bar.set_postfix(postfix, refresh=False)
                    if step % eval_every == 0 or step == total_steps:
                        record(step)
                    if step == total_steps:
                        break
    finally:
        bar.close()
        model.train(was_training)
    history.seconds = time.perf_counter() - start
    if keep_best:
        model.load_state_dict(history.best_state)
    return history


def _append_line(path: Union[str, os.PathLike], entry: Dict[str, Any]) -> None:
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, 'a', encoding='utf-8') as handle:
        handle.write(json.dumps(entry) + '\n')
        handle.flush()
