r"""The training loop of the local generative models."""
import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ghnlib.errors import GhnlibError

__all__ = ['fit_kernel_model', 'VAE_RECIPE', 'PAPER_VAE_RECIPE',
           'VQVAE_RECIPE', 'CODE_PRIOR_RECIPE']

#: The paper's VAE recipe: Adam, learning rate 0.01 falling linearly to 0,
#: batch 128 and weight decay 1 (as the paper states it; with Adam's coupled
#: L2 penalty this strength pulls every weight to zero, see
#: :obj:`VAE_RECIPE`).
PAPER_VAE_RECIPE = {'lr': 0.01, 'weight_decay': 1.0, 'batch_size': 128}

#: The VAE recipe used by default: the paper's, with weight decay 0.
VAE_RECIPE = {'lr': 0.01, 'weight_decay': 0.0, 'batch_size': 128}

#: The paper's VQ-VAE recipe: Adam, learning rate 0.01 falling linearly to
#: 0, weight decay :math:`10^{-5}`, batch 128.
VQVAE_RECIPE = {'lr': 0.01, 'weight_decay': 1e-5, 'batch_size': 128}

#: A recipe for :class:`~ghnlib.local.code_prior.CodePrior` (the paper gives
#: none for its PixelCNN).
CODE_PRIOR_RECIPE = {'lr': 0.003, 'weight_decay': 0.0, 'batch_size': 128}


def _split_loss(output) -> Tuple[Tensor, Dict[str, Tensor]]:
    if isinstance(output, tuple):
        loss, stats = output
        return loss, dict(stats)
    return output, {}


def _to_float(value) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def _check_data(data: Tensor, name: str) -> Tensor:
    if not isinstance(data, Tensor):
        raise GhnlibError(f'fit_kernel_model expects {name} as a tensor '
                          f'([N, k, k] slices or [N, P] codes), got '
                          f'{type(data).__name__}; convert with '
                          f'torch.as_tensor')
    if data.dim() < 1 or data.size(0) == 0:
        raise GhnlibError(f'fit_kernel_model expects {name} to hold at least '
                          f'one example along dimension 0, got shape '
                          f'{list(data.shape)}')
    if data.is_floating_point() and not torch.isfinite(data).all():
        bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
        raise GhnlibError(f'fit_kernel_model got {name} with {bad} example(s) '
                          f'holding NaN or infinite values; drop them (e.g. '
                          f'data[torch.isfinite(data).flatten(1).all(1)]) '
                          f'before fitting')
    return data


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GhnlibError(f'fit_kernel_model expects {name} to be a positive '
                          f'integer, got {value!r}')
    return value


def _to_model(batch: Tensor, like: Tensor) -> Tensor:
    if batch.is_floating_point():
        return batch.to(device=like.device, dtype=like.dtype)
    return batch.to(like.device)


@torch.no_grad()
def _mean_loss(model: nn.Module, data: Tensor, batch_size: int,
               like: Tensor) -> float:
    total = 0.0
    for start in range(0, data.size(0), batch_size):
        batch = _to_model(data[start:start + batch_size], like)
        loss, _ = _split_loss(model.loss(batch))
        total += _to_float(loss) * batch.size(0)
    return total / data.size(0)


def fit_kernel_model(model: nn.Module, slices: Tensor, *, epochs: int = 20,
                     batch_size: int = 128, lr: float = 0.01,
                     weight_decay: float = 0.0,
                     val_slices: Optional[Tensor] = None, seed: int = 0,
                     progress: bool = False) -> Dict[str, List[float]]:
    r"""Trains a local generative model with Adam and a learning rate that
    falls linearly to zero over all steps, as in `"From Pointwise to
    Powerhouse: Initialising Neural Networks with Generative Models"
    <https://arxiv.org/abs/2310.16695>`_ (Harder et al., 2023).

    .. math::
        \eta_t = \eta_0 \left(1 - \frac{t}{T}\right), \qquad
        t = 0, \dots, T, \quad T = \mathrm{epochs} \cdot
        \left\lceil N / \mathrm{batch\_size} \right\rceil

    Any module with a :obj:`loss(batch)` method returning a scalar or a
    (scalar, dict of scalar statistics) pair can be fitted:
    :class:`~ghnlib.local.kernel_vae.KernelVAE` and
    :class:`~ghnlib.local.kernel_vqvae.KernelVQVAE` on float slices
    :math:`[N, k, k]`, :class:`~ghnlib.local.code_prior.CodePrior` on long
    codes :math:`[N, P]`. The shuffling and the randomness inside the loss
    (the VAE's reparameterisation) are seeded by :obj:`seed`, and the global
    random state is left as it was, so equal seeds give equal histories.
    The paper's settings are in :obj:`VAE_RECIPE`, :obj:`PAPER_VAE_RECIPE`
    and :obj:`VQVAE_RECIPE` (use as :obj:`fit_kernel_model(m, x,
    **VQVAE_RECIPE)`).

    Args:
        model (torch.nn.Module): The model, trained in place.
        slices (Tensor): Training data on any device; batches are moved to
            the model's device (and floating ones to its dtype).
        epochs (int, optional): Passes over the data. (default: :obj:`20`)
        batch_size (int, optional): Examples per step; the last batch of an
            epoch may be smaller. (default: :obj:`128`)
        lr (float, optional): Initial learning rate :math:`\eta_0`.
            (default: :obj:`0.01`)
        weight_decay (float, optional): Adam's (L2) weight decay.
            (default: :obj:`0.0`)
        val_slices (Tensor, optional): Validation data, evaluated in eval
            mode after every epoch. (default: :obj:`None`)
        seed (int, optional): Seed of the shuffling and of the loss's
            randomness. (default: :obj:`0`)
        progress (bool, optional): Print one line per epoch.
            (default: :obj:`False`)

    Returns:
        A history of per-epoch lists: :obj:`'loss'` (mean training loss per
        example), :obj:`'lr'` (learning rate after the epoch, :math:`0` after
        the last), :obj:`'val_loss'` when :obj:`val_slices` is given, and the
        mean of every statistic the model's loss reports under its own name.

    Raises:
        GhnlibError: On bad arguments, on data holding NaN or infinite
            values, and on a non-finite loss (naming the epoch and step).

    Shapes:
        - **slices:** :math:`[N, k, k]` floats or :math:`[N, P]` codes
    """
    if not callable(getattr(model, 'loss', None)):
        raise GhnlibError(f'fit_kernel_model expects a model with a '
                          f'loss(batch) method, got {type(model).__name__}; '
                          f'use KernelVAE, KernelVQVAE or CodePrior')
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise GhnlibError(f'fit_kernel_model got a {type(model).__name__} '
                          f'without trainable parameters; nothing to fit')
    slices = _check_data(slices, 'slices')
    if val_slices is not None:
        val_slices = _check_data(val_slices, 'val_slices')
    _check_positive_int(epochs, 'epochs')
    _check_positive_int(batch_size, 'batch_size')
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise GhnlibError(f'fit_kernel_model expects a positive finite lr, '
                          f'got {lr!r}')
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise GhnlibError(f'fit_kernel_model expects weight_decay >= 0, got '
                          f'{weight_decay!r}')

    device = params[0].device
    num_examples = slices.size(0)
    steps_per_epoch = math.ceil(num_examples / batch_size)
    total_steps = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
    shuffle = torch.Generator().manual_seed(seed)

    history: Dict[str, List[float]] = {'loss': [], 'lr': []}
    if val_slices is not None:
        history['val_loss'] = []
    was_training = model.training
    rng_devices = [device] if device.type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(seed)
            for epoch in range(epochs):
                model.train()
                order = torch.randperm(num_examples, generator=shuffle)
                sums: Dict[str, float] = {'loss': 0.0}
                for step in range(steps_per_epoch):
                    index = order[step * batch_size:(step + 1) * batch_size]
                    batch = _to_model(slices[index.to(slices.device)],
                                      params[0])
                    loss, stats = _split_loss(model.loss(batch))
                    if not torch.isfinite(loss):
                        raise GhnlibError(
                            f'fit_kernel_model: the loss of '
                            f'{type(model).__name__} became '
                            f'{_to_float(loss)} at '
                            f'epoch {epoch + 1}/{epochs}, step {step + 1}/'
                            f'{steps_per_epoch}; lower lr (given {lr}) or '
                            f'standardise the slices')
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    size = batch.size(0)
                    sums['loss'] += _to_float(loss) * size
                    for name, value in stats.items():
                        sums[name] = (sums.get(name, 0.0)
                                      + _to_float(value) * size)
                for name, value in sums.items():
                    history.setdefault(name, []).append(value / num_examples)
                history['lr'].append(optimizer.param_groups[0]['lr'])
                line = (f'epoch {epoch + 1}/{epochs}: '
                        f'loss {history["loss"][-1]:.4f}')
                if val_slices is not None:
                    model.eval()
                    history['val_loss'].append(
                        _mean_loss(model, val_slices, batch_size, params[0]))
                    line += f', val_loss {history["val_loss"][-1]:.4f}'
                if progress:
                    print(line, flush=True)
    finally:
        model.train(was_training)
    return history
