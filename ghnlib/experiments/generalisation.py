r"""How well initialisations carry over to architectures never trained on:
accuracy at initialisation and after a short fine-tuning, per test split
(as Table 2 of the `"Parameter Prediction for Unseen Deep Architectures"
<https://arxiv.org/abs/2110.13100>`_ paper)."""
import dataclasses
import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ghnlib.errors import GhnlibError
from ghnlib.nn.output_scale import scale_outputs_
from ghnlib.train.evaluation import calibrate_batch_norm, evaluate
from ghnlib.train.net_trainer import SGDRecipe, train_network

__all__ = ['GeneralisationResult', 'evaluate_generalisation', 'summarise',
           'FINE_TUNE_RECIPE']

#: One epoch of SGD, the plain trainer's recipe at a rate every
#: architecture of the splits survives.
FINE_TUNE_RECIPE = SGDRecipe(lr=0.01, momentum=0.9, weight_decay=1e-4,
                             batch_size=64, epochs=1, milestones=(),
                             factors=())


@dataclasses.dataclass
class GeneralisationResult:
    r"""One architecture under one initialisation.

    Args:
        split (str): The test split (or :obj:`'real'`).
        arch (str): The architecture's name.
        init (str): The initialisation's name.
        accuracy_at_init (float): Test accuracy before any training step
            (batch-norm statistics recomputed on a few training batches).
        accuracy_fine_tuned (float, optional): Test accuracy after the
            fine-tuning, :obj:`None` when it was not run.
        params (int): The architecture's parameter count.
        seconds (float): Wall time of this row.
    """
    split: str
    arch: str
    init: str
    accuracy_at_init: float
    accuracy_fine_tuned: Optional[float]
    params: int
    seconds: float


InitFunction = Callable[[nn.Module, torch.Generator], nn.Module]


def _accuracy_at_init(model: nn.Module, train_set: Dataset, test_set: Dataset,
                      *, scale: bool, calibration_batches: int,
                      seed: int) -> float:
    loader = DataLoader(train_set, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    if scale:
        scale_outputs_(model.train(), next(iter(loader))[0])
    calibrate_batch_norm(model, loader, calibration_batches)
    return evaluate(model, test_set).accuracy


def evaluate_generalisation(
        architectures: Sequence[Tuple[str, str, Callable[[], nn.Module]]],
        inits: Dict[str, Tuple[InitFunction, bool]], train_set: Dataset,
        test_set: Dataset, *, fine_tune: bool = True,
        recipe: SGDRecipe = FINE_TUNE_RECIPE, calibration_batches: int = 4,
        seed: int = 0, progress: Optional[Callable[[str], None]] = None
) -> List[GeneralisationResult]:
    r"""Initialises every architecture with every initialisation, measures
    its test accuracy with no training step, then (with :obj:`fine_tune`)
    after training it with :obj:`recipe` from there.

    Args:
        architectures (Sequence[Tuple[str, str, Callable]]): :obj:`(split,
            name, build)` with :obj:`build()` returning a fresh network.
        inits (Dict[str, Tuple[Callable, bool]]): By name, :obj:`(init,
            scale)`: :obj:`init(model, generator)` initialises the model in
            place; with :obj:`scale`, its weight layers are then brought to
            unit output scale on a training batch
            (:func:`~ghnlib.nn.output_scale.scale_outputs_`).
        train_set (Dataset): Batch-norm statistics, output scales and
            fine-tuning come from it.
        test_set (Dataset): What accuracy is measured on.
        fine_tune (bool, optional): Also fine-tune. (default: :obj:`True`)
        recipe (SGDRecipe, optional): The fine-tuning.
            (default: :obj:`FINE_TUNE_RECIPE`)
        calibration_batches (int, optional): Training batches for the
            batch-norm statistics. (default: :obj:`4`)
        seed (int, optional): Seeds the initialisations and the training.
            (default: :obj:`0`)
        progress (Callable[[str], None], optional): Called with a line per
            result. (default: :obj:`None`)
    """
    if not architectures or not inits:
        raise GhnlibError('evaluate_generalisation needs at least one '
                          'architecture and one initialisation')
    results = []
    for split, name, build in architectures:
        for init_name, (init, scale) in inits.items():
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = build()
            init(model, torch.Generator().manual_seed(seed))
            at_init = _accuracy_at_init(
                model, train_set, test_set, scale=scale,
                calibration_batches=calibration_batches, seed=seed)
            tuned = None
            if fine_tune:
                try:
                    train_network(model, train_set, test_set, recipe=recipe,
                                  seed=seed, progress=False,
                                  calibration_batches=calibration_batches)
                    tuned = evaluate(model, test_set).accuracy
                except GhnlibError:
                    tuned = float('nan')  # diverged
            result = GeneralisationResult(
                split, name, init_name, at_init, tuned,
                sum(p.numel() for p in model.parameters()),
                time.perf_counter() - start)
            results.append(result)
            if progress is not None:
                progress(f'{split:12s} {name:28s} {init_name:10s} '
                         f'init {at_init:.3f}'
                         + (f' tuned {tuned:.3f}' if tuned is not None
                            else ''))
    return results


def summarise(results: Sequence[GeneralisationResult],
              threshold: float = 0.3) -> List[Dict[str, object]]:
    r"""Per split and initialisation: the mean and median accuracy at
    initialisation, the fraction of architectures above :obj:`threshold`
    there, the mean accuracy after fine-tuning over the runs that did not
    diverge, and how many diverged."""
    groups: Dict[Tuple[str, str], List[GeneralisationResult]] = {}
    for r in results:
        groups.setdefault((r.split, r.init), []).append(r)
    rows = []
    for (split, init), group in groups.items():
        at_init = [r.accuracy_at_init for r in group]
        ran = [r.accuracy_fine_tuned for r in group
               if r.accuracy_fine_tuned is not None]
        tuned = [a for a in ran if math.isfinite(a)]
        rows.append({
            'split': split, 'init': init, 'archs': len(group),
            'mean_at_init': statistics.fmean(at_init),
            'median_at_init': statistics.median(at_init),
            'above_threshold': sum(a > threshold for a in at_init) / len(group),
            'mean_fine_tuned': statistics.fmean(tuned) if tuned else None,
            'diverged': len(ran) - len(tuned),
        })
    return rows
