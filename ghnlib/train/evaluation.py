r"""Accuracy and loss of a classifier on a dataset."""
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = ['Evaluation', 'evaluate', 'calibrate_batch_norm']


class Evaluation(NamedTuple):
    """Accuracy (fraction in [0, 1]), mean cross-entropy and sample count."""
    accuracy: float
    loss: float
    count: int


@torch.no_grad()
def evaluate(model: nn.Module, data: Union[Dataset, DataLoader], *,
             batch_size: int = 512,
             device: Optional[Union[str, torch.device]] = None) -> Evaluation:
    r"""Evaluates :obj:`model` in eval mode on :obj:`data` and restores its
    mode.

    Args:
        model (nn.Module): A classifier returning logits :math:`[B, C]`.
        data (Dataset or DataLoader): Items or batches of
            :obj:`(image, label)`.
        batch_size (int, optional): Batch size when :obj:`data` is a
            dataset. (default: :obj:`512`)
        device (str or torch.device, optional): Where to run. (default:
            the device of the model's first parameter)
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device('cpu')
    loader = data if isinstance(data, DataLoader) else DataLoader(
        data, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    correct, total_loss, count = 0, 0.0, 0
    try:
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            total_loss += F.cross_entropy(logits, labels,
                                          reduction='sum').item()
            correct += (logits.argmax(dim=-1) == labels).sum().item()
            count += labels.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError('cannot evaluate on an empty dataset')
    return Evaluation(correct / count, total_loss / count, count)


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@torch.no_grad()
def calibrate_batch_norm(model: nn.Module, data: Union[Dataset, DataLoader],
                         num_batches: int = 4, *, batch_size: int = 128
                         ) -> nn.Module:
    r"""Recomputes every batch-norm layer's running statistics as the plain
    average over :obj:`num_batches` batches of :obj:`data`; no parameter
    changes. Predicted weights come with reset statistics (mean 0,
    variance 1), which eval mode would otherwise use as they are.

    Args:
        model (nn.Module): The model (its mode is restored).
        data (Dataset or DataLoader): Items or batches of
            :obj:`(image, label)`.
        num_batches (int, optional): Batches to average over; 0 leaves the
            statistics as they are. (default: :obj:`4`)
        batch_size (int, optional): When :obj:`data` is a dataset.
            (default: :obj:`128`)
    """
    norms = [m for m in model.modules() if isinstance(m, _NORMS)
             and m.track_running_stats]
    if not norms or num_batches <= 0:
        return model
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device('cpu')
    loader = data if isinstance(data, DataLoader) else DataLoader(
        data, batch_size=batch_size, shuffle=False)
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    try:
        for step, (images, _) in enumerate(loader):
            if step == num_batches:
                break
            model(images.to(device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model
