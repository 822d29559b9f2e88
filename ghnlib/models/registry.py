r"""A registry of model builders, looked up by name."""
import inspect
from typing import Callable, List, Optional, Sequence, TypeVar, Union

import torch.nn as nn

from ghnlib.errors import UnknownModelError
from ghnlib.utils.registry import Registry

__all__ = ['register_model', 'list_models', 'get_model',
           'get_model_for_input']

Builder = TypeVar('Builder', bound=Callable[..., nn.Module])

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    'model', error=UnknownModelError,
    hint='Call ghnlib.models.list_models() to see the available models.')


def register_model(
    name: Optional[Union[str, Callable[..., nn.Module]]] = None,
) -> Callable[[Builder], Builder]:
    r"""Decorator that adds a model builder to the registry, so that
    :func:`get_model` can build it by name.

    .. code-block:: python

        @register_model()
        def my_net(*, num_classes=10):
            ...

        model = get_model('my_net', num_classes=100)

    Args:
        name (str, optional): The name to register the builder under. If not
            given, the builder's :obj:`__name__` is used. The decorator may
            also be applied bare (:obj:`@register_model`).
            (default: :obj:`None`)

    Raises:
        ValueError: If a model with the same name is already registered.
    """
    if callable(name):
        return MODELS.register(None, name)
    return MODELS.register(name)


def list_models(pattern: Optional[str] = None) -> List[str]:
    r"""Returns the sorted names of the registered models.

    Args:
        pattern (str, optional): A case-sensitive :mod:`fnmatch` glob, *e.g.*,
            :obj:`'resnet*'`; only names matching it are returned.
            (default: :obj:`None`)
    """
    return MODELS.names(pattern)


def get_model(name: str, **kwargs) -> nn.Module:
    r"""Builds the registered model :obj:`name`.

    Args:
        name (str): The registered name of the model, see
            :func:`list_models`.
        **kwargs (optional): Keyword arguments passed to the model builder.

    Raises:
        UnknownModelError: If no model is registered under :obj:`name`.
    """
    return MODELS.get(name)(**kwargs)


def get_model_for_input(name: str, input_shape: Sequence[int],
                        **kwargs) -> nn.Module:
    r"""Builds the registered model :obj:`name` for images of
    :obj:`input_shape`: builders that take :obj:`in_channels` get the
    number of channels, and builders that take :obj:`input_size` (the side
    of square inputs) get it, unless :obj:`kwargs` sets them.

    .. code-block:: python

        model = get_model_for_input('small_cnn', (1, 3, 32, 32))

    Args:
        name (str): The registered name of the model.
        input_shape (Sequence[int]): :math:`(C, H, W)` or
            :math:`(B, C, H, W)`.
        **kwargs (optional): Further keyword arguments of the builder.

    Raises:
        UnknownModelError: If no model is registered under :obj:`name`.
        ValueError: If :obj:`input_shape` is not an image shape.
    """
    if len(input_shape) not in (3, 4):
        raise ValueError(f'input_shape must be (C, H, W) or (B, C, H, W), '
                         f'got {tuple(input_shape)}')
    builder = MODELS.get(name)
    channels, height, width = (int(s) for s in tuple(input_shape)[-3:])
    parameters = inspect.signature(builder).parameters
    if 'in_channels' in parameters:
        kwargs.setdefault('in_channels', channels)
    if 'input_size' in parameters and height == width:
        kwargs.setdefault('input_size', height)
    return builder(**kwargs)
