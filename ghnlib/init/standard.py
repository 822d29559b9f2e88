r"""The standard random initialisations: He, Xavier and PyTorch's default,
registered as :obj:`'he'`, :obj:`'xavier'` and :obj:`'default'`."""
import contextlib
import functools
from typing import Callable, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError
from ghnlib.init.registry import DEFAULT_INPUT_SHAPE, register_initializer

__all__ = ['he_init', 'xavier_init', 'default_init']

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                 nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
                 nn.Bilinear)
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
               nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
               nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm)


@contextlib.contextmanager
def _seeded_global_rng(generator: Optional[torch.Generator],
                       model: nn.Module) -> Iterator[None]:
    # `reset_parameters()` takes no generator; seeding a forked global RNG
    # from `generator` makes it repeatable without touching the caller's RNG.
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (1, ), generator=generator,
                             device=generator.device))
    devices = sorted({p.device.index or 0 for p in model.parameters()
                      if p.device.type == 'cuda'})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _own_parameters(module: nn.Module) -> List[nn.Parameter]:
    return list(module.parameters(recurse=False))


def _check_materialized(model: nn.Module, spec: str) -> None:
    for name, param in model.named_parameters():
        if nn.parameter.is_lazy(param):
            raise GhnlibError(
                f"initializer '{spec}': parameter '{name}' is uninitialised "
                '(lazy module); run one forward pass before initialising')


def _attention_parameters(module: nn.MultiheadAttention, fill: Callable,
                          generator: Optional[torch.Generator]) -> None:
    """A multi-head attention's own parameters (its output projection is a
    linear child): the input projections filled like any weight matrix, the
    biases zero; torch resets them only in a private method."""
    for name in ('in_proj_weight', 'q_proj_weight', 'k_proj_weight',
                 'v_proj_weight'):
        weight = getattr(module, name, None)
        if weight is not None:
            _fill(weight, generator, fill)
    for name in ('in_proj_bias', 'bias_k', 'bias_v'):
        bias = getattr(module, name, None)
        if bias is not None:
            nn.init.zeros_(bias)


def _reset_fallback(module: nn.Module, path: str, spec: str) -> None:
    if isinstance(module, nn.MultiheadAttention):
        _attention_parameters(module, nn.init.xavier_uniform_, None)
        return
    if not hasattr(module, 'reset_parameters'):
        raise GhnlibError(
            f"initializer '{spec}' does not know how to initialise module "
            f"'{path}' ({type(module).__name__}): it has parameters of its "
            'own and no reset_parameters(); give it a reset_parameters() '
            'method or use another initializer')
    module.reset_parameters()


def _fill(tensor: torch.Tensor, generator: Optional[torch.Generator],
          fill: Callable) -> None:
    if generator is None or generator.device == tensor.device:
        fill(tensor, generator=generator)
        return
    # A generator draws only on its own device.
    staged = torch.empty(tensor.shape, dtype=tensor.dtype,
                         device=generator.device)
    fill(staged, generator=generator)
    tensor.copy_(staged)


def _init_layers(model: nn.Module, generator: Optional[torch.Generator],
                 fill_weight: Callable, spec: str) -> nn.Module:
    _check_materialized(model, spec)
    with _seeded_global_rng(generator, model):
        for path, module in model.named_modules():
            if isinstance(module, WEIGHT_LAYERS):
                _fill(module.weight, generator, fill_weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                _attention_parameters(module, fill_weight, generator)
            elif isinstance(module, NORM_LAYERS):
                if getattr(module, 'weight', None) is not None:
                    nn.init.ones_(module.weight)
                if getattr(module, 'bias', None) is not None:
                    nn.init.zeros_(module.bias)
                if hasattr(module, 'reset_running_stats'):
                    module.reset_running_stats()
            elif _own_parameters(module):
                _reset_fallback(module, path, spec)
    return model


@register_initializer('he')
@torch.no_grad()
def he_init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
            input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
    r"""The initialisation from the `"Delving Deep into Rectifiers"
    <https://arxiv.org/abs/1502.01852>`_ paper (He et al., 2015): every
    convolution (transposed ones included) and linear weight is drawn from

    .. math::
        \mathcal{N}\left(0, \frac{2}{\mathrm{fan\_in}}\right),

    with :math:`\mathrm{fan\_in}` as :func:`torch.nn.init.kaiming_normal_`
    computes it; biases are zero, norm layers have weight 1 and bias 0, and
    any other module with parameters calls its own
    :meth:`reset_parameters`.

    Args:
        model (nn.Module): The model, initialised in place.
        generator (torch.Generator, optional): The source of every random
            number. (default: :obj:`None`)
        input_shape (Sequence[int], optional): Unused. (default:
            :obj:`(1, 3, 32, 32)`)
    """
    fill = functools.partial(nn.init.kaiming_normal_, mode='fan_in',
                             nonlinearity='relu')
    return _init_layers(model, generator, fill, 'he')


@register_initializer('xavier')
@torch.no_grad()
def xavier_init(model: nn.Module, generator: Optional[torch.Generator] = None,
                *, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE
                ) -> nn.Module:
    r"""The initialisation from the `"Understanding the Difficulty of Training
    Deep Feedforward Neural Networks"
    <https://proceedings.mlr.press/v9/glorot10a.html>`_ paper (Glorot and
    Bengio, 2010), normal variant: every convolution and linear weight is
    drawn from

    .. math::
        \mathcal{N}\left(0, \frac{2}{\mathrm{fan\_in} +
        \mathrm{fan\_out}}\right);

    everything else as in :func:`he_init`.

    Args:
        model (nn.Module): The model, initialised in place.
        generator (torch.Generator, optional): The source of every random
            number. (default: :obj:`None`)
        input_shape (Sequence[int], optional): Unused. (default:
            :obj:`(1, 3, 32, 32)`)
    """
    return _init_layers(model, generator, nn.init.xavier_normal_, 'xavier')


@register_initializer('default')
@torch.no_grad()
def default_init(model: nn.Module, generator: Optional[torch.Generator] = None,
                 *, input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE
                 ) -> nn.Module:
    r"""PyTorch's default initialisation: every module with parameters of its
    own calls its :meth:`reset_parameters` (parents before children).

    Args:
        model (nn.Module): The model, initialised in place.
        generator (torch.Generator, optional): Seeds the global generator
            for the duration of the call, which is restored afterwards.
            (default: :obj:`None`)
        input_shape (Sequence[int], optional): Unused. (default:
            :obj:`(1, 3, 32, 32)`)
    """
    _check_materialized(model, 'default')
    with _seeded_global_rng(generator, model):
        for path, module in model.named_modules():
            if _own_parameters(module):
                _reset_fallback(module, path, 'default')
            elif hasattr(module, 'reset_running_stats'):
                module.reset_running_stats()
    return model
