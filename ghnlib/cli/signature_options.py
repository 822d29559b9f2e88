r"""The options of a function or class as a dataclass, so that the
``ghnlib`` command gives each of them a flag the way it does for config
dataclasses, and a new option gets its flag the day it is added."""
import dataclasses
import inspect
import typing
from typing import Any, Callable, Sequence

__all__ = ['signature_options']


def signature_options(function: Callable[..., Any], name: str, *,
                      exclude: Sequence[str] = ()) -> type:
    r"""A dataclass named :obj:`name` with one field per parameter of
    :obj:`function` (its annotation and default), but those in
    :obj:`exclude`; its docstring is :obj:`function`'s, so its ``Args:``
    section documents the fields. ``function(**dataclasses.asdict(options),
    ...)`` calls it with them.

    Args:
        function (callable): A function, method or class (its constructor).
        name (str): The dataclass's name.
        exclude (Sequence[str], optional): Parameters the caller passes
            itself. (default: :obj:`()`)
    """
    hints = typing.get_type_hints(
        function.__init__ if inspect.isclass(function) else function,
        include_extras=True)
    fields = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in exclude or parameter.kind in (
                parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is parameter.empty:
            raise TypeError(f'{function.__qualname__}: parameter '
                            f'{parameter.name!r} has no default; exclude it '
                            'and pass it in the command')
        fields.append((parameter.name, hints.get(parameter.name, Any),
                       dataclasses.field(default=parameter.default)))
    options = dataclasses.make_dataclass(name, fields, frozen=True)
    options.__doc__ = function.__doc__
    options.__module__ = __name__
    return options
