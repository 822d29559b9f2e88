r"""The models the ``ghnlib`` command can name."""
import importlib
from typing import Optional, Tuple

import torch.nn as nn

from ghnlib import models
from ghnlib.errors import GhnlibError

__all__ = ['resolve_model']


def _torchvision():
    """torchvision, or :obj:`None` with the reason it cannot be imported."""
    try:
        import torchvision
    except (ImportError, RuntimeError) as error:
        return None, f'torchvision cannot be imported ({error})'
    return torchvision, None


def resolve_model(spec: str) -> Tuple[nn.Module, Optional[Tuple[int, ...]]]:
    r"""Builds the model named by :obj:`spec`: a ghnlib registry name
    (:obj:`'resnet20'`), a torchvision model name (:obj:`'resnet50'`) or
    :obj:`'package.module:attr'` naming an :class:`~torch.nn.Module`
    instance, a module class or a builder function (called without
    arguments).

    Returns:
        The model and its natural input shape if known (:obj:`None` if not).
    """
    if ':' in spec:
        module_name, _, attr = spec.partition(':')
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, RuntimeError) as error:
            raise GhnlibError(f"cannot import '{spec}': {error}") from error
        model = obj if isinstance(obj, nn.Module) else obj()
        if not isinstance(model, nn.Module):
            raise GhnlibError(f"'{spec}' gave a {type(model).__name__}, "
                              'expected a torch.nn.Module')
        return model, None
    if spec in models.list_models():
        return models.get_model(spec), None
    torchvision, why_not = _torchvision()
    if torchvision is not None and spec in torchvision.models.list_models():
        size = 299 if spec == 'inception_v3' else 224
        return torchvision.models.get_model(spec), (1, 3, size, size)
    known = ', '.join(models.list_models())
    hint = '' if torchvision is not None else f' ({why_not})'
    raise GhnlibError(f"unknown model '{spec}': not a ghnlib model ({known}), "
                      f"not a torchvision model{hint}, and not "
                      "'package.module:attr'")
