r"""Initialisation schemes, registered by name: see :func:`initialize`."""
import contextlib
import difflib
import functools
import os
from typing import (Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Sequence)

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError

__all__ = [
    'Initializer',
    'register_initializer',
    'list_initializers',
    'get_initializer',
    'initialize',
]

#: The signature of an initialisation scheme: it writes new parameters into
#: the model, drawing every random number from the generator, and returns it.
InitFunction = Callable[..., nn.Module]

DEFAULT_INPUT_SHAPE = (1, 3, 32, 32)

WEIGHT_LAYERS = (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear)
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
               nn.RMSNorm)


class _Scheme(NamedTuple):
    build: Callable
    argument: Optional[str]


_SCHEMES: Dict[str, _Scheme] = {}


class Initializer:
    r"""An initialisation scheme bound to its spec, as returned by
    :func:`get_initializer`.

    Calling it writes new parameters into a model (in place, batch-norm
    running statistics reset) and returns the model.

    Args:
        spec (str): The spec it was built from, *e.g.*, :obj:`'he'` or
            :obj:`'ghn:ghn.safetensors'`.
        function (Callable): :obj:`function(model, generator, *,
            input_shape)`, the scheme itself.
    """
    def __init__(self, spec: str, function: InitFunction):
        self.spec = spec
        self.function = function

    def __call__(self, model: nn.Module,
                 generator: Optional[torch.Generator] = None, *,
                 input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE
                 ) -> nn.Module:
        r"""Initialises :obj:`model` in place and returns it.

        Args:
            model (nn.Module): The model to initialise.
            generator (torch.Generator, optional): The source of every random
                number the scheme draws; a seeded generator repeats the
                result. (default: :obj:`None`, the global generator)
            input_shape (Sequence[int], optional): Example input shape, for
                schemes that trace the model. (default:
                :obj:`(1, 3, 32, 32)`)
        """
        if not isinstance(model, nn.Module):
            raise GhnlibError(f"initializer '{self.spec}' expects an "
                              f'nn.Module, got {type(model).__name__}')
        if generator is not None and not isinstance(generator,
                                                    torch.Generator):
            raise GhnlibError(
                f"initializer '{self.spec}' expects generator to be a "
                f'torch.Generator or None, got {type(generator).__name__}; '
                'pass torch.Generator().manual_seed(seed)')
        return self.function(model, generator, input_shape=tuple(input_shape))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}('{self.spec}')"


def register_initializer(name: str, *, argument: Optional[str] = None
                         ) -> Callable[[Callable], Callable]:
    r"""Decorator that adds an initialisation scheme to the registry, so that
    :func:`get_initializer` finds it by name.

    Without :obj:`argument` the decorated function is the scheme itself,
    :obj:`function(model, generator, *, input_shape) -> model`. With it, the
    scheme is spelled :obj:`name:ARGUMENT` and the decorated function is a
    builder, called once per spec with the argument string, that returns the
    scheme:

    .. code-block:: python

        @register_initializer('zeros')
        def zeros(model, generator, *, input_shape):
            ...

        @register_initializer('vae', argument='DIR')
        def vae(directory: str):
            sampler = load(directory)
            return lambda model, generator, *, input_shape: ...

    Args:
        name (str): The scheme's name; it may not contain :obj:`':'`.
        argument (str, optional): What the required argument is, shown in
            listings and errors, *e.g.*, :obj:`'PATH'`. (default:
            :obj:`None`, the scheme takes no argument)

    Raises:
        ValueError: If :obj:`name` is already registered or contains
            :obj:`':'`.
    """
    if not name or ':' in name:
        raise ValueError(f"an initializer name must be non-empty and "
                         f"contain no ':', got {name!r}")

    def decorator(function: Callable) -> Callable:
        if name in _SCHEMES:
            registered = _SCHEMES[name].build
            raise ValueError(f"An initializer named '{name}' is already "
                             f'registered (by {registered.__module__}.'
                             f'{registered.__qualname__})')
        _SCHEMES[name] = _Scheme(function, argument)
        return function

    return decorator


def list_initializers() -> List[str]:
    r"""Returns the sorted names of the registered initialisation schemes."""
    return sorted(_SCHEMES)


def _usage(name: str) -> str:
    argument = _SCHEMES[name].argument
    return name if argument is None else f'{name}:{argument}'


def get_initializer(spec: str) -> Initializer:
    r"""Builds the initialisation scheme a spec names.

    A spec is :obj:`name` or :obj:`name:argument`: :obj:`'he'`,
    :obj:`'xavier'`, :obj:`'default'`, :obj:`'ghn:PATH'`,
    :obj:`'noise-ghn:PATH'`, or any scheme added with
    :func:`register_initializer` (:func:`list_initializers` lists them).

    Args:
        spec (str): The spec.

    Raises:
        GhnlibError: If the name is unknown, or the argument is missing
            where the scheme needs one or given where it takes none.
    """
    if not isinstance(spec, str):
        raise GhnlibError(f'an initializer spec must be a string such as '
                          f"'he' or 'ghn:PATH', got {type(spec).__name__}")
    name, has_colon, argument = spec.partition(':')
    known = ', '.join(_usage(n) for n in list_initializers())
    if name not in _SCHEMES:
        close = difflib.get_close_matches(name, list(_SCHEMES), n=3)
        hint = (f" Did you mean {', '.join(repr(c) for c in close)}?"
                if close else '')
        raise GhnlibError(f"Unknown initializer '{name}' in spec "
                          f"'{spec}'.{hint} Known initializers: {known}.")
    scheme = _SCHEMES[name]
    if scheme.argument is None:
        if has_colon:
            raise GhnlibError(f"initializer '{name}' takes no argument, got "
                              f"spec '{spec}': use '{name}'")
        return Initializer(spec, scheme.build)
    if not argument:
        raise GhnlibError(f"initializer '{name}' needs an argument, got spec "
                          f"'{spec}': use '{name}:{scheme.argument}'")
    return Initializer(spec, scheme.build(argument))


def initialize(model: nn.Module, spec: str, *,
               generator: Optional[torch.Generator] = None,
               input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
    r"""Initialises :obj:`model` in place with the scheme :obj:`spec` names
    (see :func:`get_initializer`) and returns it.

    Args:
        model (nn.Module): The model to initialise.
        spec (str): The scheme, *e.g.*, :obj:`'he'` or :obj:`'ghn:ghn.pt'`.
        generator (torch.Generator, optional): The source of every random
            number; a seeded generator repeats the result. (default:
            :obj:`None`, the global generator)
        input_shape (Sequence[int], optional): Example input shape, for
            schemes that trace the model. (default: :obj:`(1, 3, 32, 32)`)
    """
    return get_initializer(spec)(model, generator, input_shape=input_shape)


# Schemes ---------------------------------------------------------------------


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


def _reset_fallback(module: nn.Module, path: str, spec: str) -> None:
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


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int):
    from ghnlib.nn.graph_hypernetwork import GraphHyperNetwork

    return GraphHyperNetwork.load(path).eval()


def _load_ghn(path: str, spec: str):
    r"""Loads the :class:`~ghnlib.GraphHyperNetwork` at :obj:`path`, once per
    version of the file (a rewritten file is read again)."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        stat = os.stat(path)
    except OSError:
        raise GhnlibError(
            f"initializer '{spec}': no GHN checkpoint at '{path}'; pass the "
            'path of a file written by GraphHyperNetwork.save') from None
    return _load_cached(path, stat.st_mtime_ns, stat.st_size)


@register_initializer('ghn', argument='PATH')
def ghn_init(path: str) -> InitFunction:
    r"""The parameters a :class:`~ghnlib.GraphHyperNetwork` predicts, from
    the checkpoint at :obj:`path`; deterministic.

    A Noise GHN (:obj:`noise_dim` > 0) is used with zero noise, the centre
    of its noise distribution; use :obj:`noise-ghn:PATH` to sample it.

    Args:
        path (str): A file written by :meth:`GraphHyperNetwork.save`.
    """
    spec = f'ghn:{path}'
    ghn = _load_ghn(path, spec)

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        noise = torch.zeros(ghn.noise_dim) if ghn.noise_dim > 0 else None
        return ghn.init_(model, noise, input_shape=input_shape)

    return init


@register_initializer('noise-ghn', argument='PATH')
def noise_ghn_init(path: str) -> InitFunction:
    r"""The parameters a Noise GHN predicts for noise
    :math:`\boldsymbol{\xi} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})` drawn
    from the generator, one draw per call: each call gives another member of
    a diverse ensemble.

    Args:
        path (str): A file written by :meth:`GraphHyperNetwork.save` of a
            GHN with :obj:`noise_dim` > 0.
    """
    spec = f'noise-ghn:{path}'
    ghn = _load_ghn(path, spec)
    if ghn.noise_dim == 0:
        raise GhnlibError(
            f"initializer '{spec}': the GHN at '{path}' has noise_dim=0 and "
            f"cannot sample; use 'ghn:{path}' for its deterministic "
            'prediction, or pass a Noise GHN checkpoint')

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        return ghn.init_(model, generator=generator, input_shape=input_shape)

    return init


def _local_init(kind: str, directory: str) -> InitFunction:
    from ghnlib.local.initializer import LocalInitializer

    local = LocalInitializer.load(directory)
    if local.kind != kind:
        raise GhnlibError(f"initializer '{kind}:{directory}': the folder holds "
                          f"a {local.kind} initialiser; use "
                          f"'{local.kind}:{directory}'")

    def init(model: nn.Module, generator: Optional[torch.Generator] = None, *,
             input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE) -> nn.Module:
        return local.init_(model, generator, input_shape=input_shape)

    return init


@register_initializer('vae', argument='DIR')
def vae_init(directory: str) -> InitFunction:
    r"""Convolution kernels sampled slice by slice from per-layer VAEs
    (:class:`~ghnlib.local.LocalInitializer`, kind :obj:`'vae'`); other
    parameters keep the model's own initialisation.

    Args:
        directory (str): A folder written by :meth:`LocalInitializer.save`.
    """
    return _local_init('vae', directory)


@register_initializer('vqvae', argument='DIR')
def vqvae_init(directory: str) -> InitFunction:
    r"""As :obj:`vae:DIR`, from per-layer VQ-VAEs (with their code prior
    when it was fit: the paper's VQVAE*).

    Args:
        directory (str): A folder written by :meth:`LocalInitializer.save`.
    """
    return _local_init('vqvae', directory)


@register_initializer('hyperrep', argument='DIR')
def hyperrep_init(directory: str) -> InitFunction:
    r"""Weights decoded from latents sampled from a hyper-representation's
    KDE over the most accurate 30 % of its zoo (:math:`S_{\mathrm{KDE30}}`,
    :class:`~ghnlib.hyperrep.HyperRepresentation`); the model must have the
    zoo's architecture.

    Args:
        directory (str): A folder written by
            :meth:`HyperRepresentation.save`.
    """
    from ghnlib.hyperrep.initializer import hyperrep_init as build

    return build(directory)
