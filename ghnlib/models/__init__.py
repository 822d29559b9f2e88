r"""Model builders, registered by name: see :func:`get_model`."""
from ghnlib.models.registry import (register_model, list_models, get_model,
                                    get_model_for_input)
from ghnlib.models.resnet_cifar import (BasicBlock, CifarResNet, ShortcutA,
                                        resnet20, resnet32, resnet44,
                                        resnet56, resnet110)
from ghnlib.models.small_cnn import SmallCNN, small_cnn

__all__ = [
    'register_model',
    'list_models',
    'get_model',
    'get_model_for_input',
    'resnet20',
    'resnet32',
    'resnet44',
    'resnet56',
    'resnet110',
    'small_cnn',
    'CifarResNet',
    'BasicBlock',
    'ShortcutA',
    'SmallCNN',
]
