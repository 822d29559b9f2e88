r"""Initialisation schemes, registered by name: see :func:`initialize`."""
import difflib
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError
from ghnlib.utils.registry import Registry

__all__ = [
    'InitFunction',
    'DEFAULT_INPUT_SHAPE',
    'SCHEMES',
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


#: Every registered scheme; an entry's metadata holds its ``argument``.
SCHEMES: Registry[Callable] = Registry(
    'initializer',
    hint='Call ghnlib.init.list_initializers() to see the known schemes.')


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
    return SCHEMES.register(name, argument=argument)


def list_initializers() -> List[str]:
    r"""Returns the sorted names of the registered initialisation schemes."""
    return SCHEMES.names()


def _usage(name: str) -> str:
    argument = SCHEMES.entry(name).metadata['argument']
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
    if name not in SCHEMES:
        close = difflib.get_close_matches(name, SCHEMES.names(), n=3)
        hint = (f" Did you mean {', '.join(repr(c) for c in close)}?"
                if close else '')
        raise GhnlibError(f"Unknown initializer '{name}' in spec "
                          f"'{spec}'.{hint} Known initializers: {known}.")
    entry = SCHEMES.entry(name)
    expected = entry.metadata['argument']
    if expected is None:
        if has_colon:
            raise GhnlibError(f"initializer '{name}' takes no argument, got "
                              f"spec '{spec}': use '{name}'")
        return Initializer(spec, entry.obj)
    if not argument:
        raise GhnlibError(f"initializer '{name}' needs an argument, got spec "
                          f"'{spec}': use '{name}:{expected}'")
    return Initializer(spec, entry.obj(argument))


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
