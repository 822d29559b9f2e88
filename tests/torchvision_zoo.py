"""torchvision's classifiers, built cheaply for tests."""
import contextlib
from unittest import mock

import torch

from torchvision_shim import import_torchvision

torchvision = import_torchvision()
MODELS = torchvision.models.list_models(module=torchvision.models)

# Models whose forward checks the input size.
_FIXED_SIZE = ('vit_', 'swin_', 'maxvit_')


@contextlib.contextmanager
def no_init():
    """Skips random initialisation (slow for the largest models)."""
    skip = lambda tensor, *args, **kwargs: tensor  # noqa: E731
    names = [n for n in dir(torch.nn.init)
             if n.endswith('_') and not n.startswith('_')]
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch.object(torch.nn.init, name, skip))
        yield


def build(name, meta=True):
    """The model, on the meta device when possible (structure only) unless
    `meta=False`; uninitialised parameters otherwise."""
    if meta:
        try:
            with torch.device('meta'):
                return torchvision.models.get_model(name)
        except NotImplementedError:
            pass  # some builders compute layer widths with tensor ops
    with no_init():
        return torchvision.models.get_model(name)


def input_size(name, smallest=False):
    """A valid input size: the native one, or a small one for a forward."""
    if name.startswith(_FIXED_SIZE):
        return 224
    if name == 'inception_v3':
        return 299  # its auxiliary head (training mode) needs the full size
    return 224 if not smallest else 64
