r"""Real small image classifiers from torchvision, adapted to small inputs:
the test split of hand-designed architectures."""
import math
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError

__all__ = ['REAL_MODELS', 'NamedModel', 'real_models']

#: The models of :func:`real_models`, in order.
REAL_MODELS = ('mobilenet_v2', 'mobilenet_v3_small', 'shufflenet_v2_x0_5',
               'densenet_bc40_k12', 'efficientnet_b0', 'regnet_x_400mf',
               'mnasnet0_5', 'googlenet', 'resnet18', 'vgg11_bn')

#: Smallest input height and width: every model keeps a feature map of at
#: least one pixel.
_MIN_SIZE = 4


class NamedModel(NamedTuple):
    """A model and its name."""
    name: str
    model: nn.Module


def _get_parent(model: nn.Module, path: str):
    parent, _, attribute = path.rpartition('.')
    return model.get_submodule(parent) if parent else model, attribute


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, attribute = _get_parent(model, path)
    setattr(parent, attribute, module)


def _first_conv(model: nn.Module, path: str, in_channels: int,
                kernel: int = None) -> None:
    """Replaces the convolution at :obj:`path` by one with
    :obj:`in_channels` inputs, stride 1 and "same" padding (kernel
    :obj:`kernel`, or the old one)."""
    old = model.get_submodule(path)
    kernel = kernel or old.kernel_size[0]
    new = nn.Conv2d(in_channels, old.out_channels, kernel, stride=1,
                    padding=kernel // 2, bias=old.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode='fan_out', nonlinearity='relu')
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    _replace(model, path, new)


def _small_vgg11_bn(models, in_channels: int, num_classes: int,
                    size: int) -> nn.Module:
    # The full classifier (25088 → 4096 → 4096) holds 120M parameters; it is
    # built on the meta device only to be replaced.
    with torch.device('meta'):
        model = models.vgg11_bn(num_classes=num_classes)
    model.features = models.vgg.make_layers(models.vgg.cfgs['A'],
                                            batch_norm=True)
    pools = [i for i, m in enumerate(model.features)
             if isinstance(m, nn.MaxPool2d)]
    for index in pools[int(math.log2(size)):]:
        model.features[index] = nn.Identity()
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(
        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
        nn.Linear(512, num_classes))
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_out',
                                    nonlinearity='relu')
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    _first_conv(model, 'features.0', in_channels)
    return model


def _builders(models) -> Dict[str, Callable[[int, int, int], nn.Module]]:
    def stride_one(builder, path, removed=(), kernel=None, **kwargs):
        def build(in_channels, num_classes, size):
            model = builder(num_classes=num_classes, **kwargs)
            _first_conv(model, path, in_channels, kernel)
            for pool in removed:
                _replace(model, pool, nn.Identity())
            return model
        return build

    def densenet(**kwargs):
        return models.DenseNet(growth_rate=12, block_config=(6, 6, 6),
                               num_init_features=24, bn_size=4, **kwargs)

    return {
        'mobilenet_v2': stride_one(models.mobilenet_v2, 'features.0.0'),
        'mobilenet_v3_small': stride_one(models.mobilenet_v3_small,
                                         'features.0.0'),
        'shufflenet_v2_x0_5': stride_one(models.shufflenet_v2_x0_5,
                                         'conv1.0', ['maxpool']),
        'densenet_bc40_k12': stride_one(densenet, 'features.conv0',
                                        ['features.pool0'], kernel=3),
        'efficientnet_b0': stride_one(models.efficientnet_b0, 'features.0.0'),
        'regnet_x_400mf': stride_one(models.regnet_x_400mf, 'stem.0'),
        'mnasnet0_5': stride_one(models.mnasnet0_5, 'layers.0'),
        'googlenet': stride_one(models.googlenet, 'conv1.conv', ['maxpool1'],
                                kernel=3, aux_logits=False,
                                init_weights=True),
        'resnet18': stride_one(models.resnet18, 'conv1', ['maxpool'],
                               kernel=3),
        'vgg11_bn': lambda c, n, size: _small_vgg11_bn(models, c, n, size),
    }


def real_models(input_shape: Sequence[int] = (3, 32, 32),
                num_classes: int = 10,
                names: Optional[Sequence[str]] = None) -> List[NamedModel]:
    r"""Ten real small classifiers from torchvision, built for
    :obj:`num_classes` classes and adapted to small inputs, in the order of
    :obj:`REAL_MODELS` (or of :obj:`names`).

    torchvision is an optional dependency, needed here only. What is adapted
    (the ImageNet models reduce their input 32-fold, which would leave less
    than a pixel of a :math:`16 \times 16` image):

    * every model: the first convolution takes :obj:`C` channels and has
      stride 1 (a fresh convolution, He-initialised);
    * ``shufflenet_v2_x0_5``, ``googlenet`` (its first max pooling),
      ``resnet18`` and the DenseNet: the max pooling after the first
      convolution is removed, and the first convolution of ``googlenet``,
      ``resnet18`` and the DenseNet is :math:`3 \times 3` instead of
      :math:`7 \times 7` (as in CIFAR ResNets);
    * ``densenet_bc40_k12``: :class:`torchvision.models.DenseNet` with
      growth rate 12, three blocks of 6 layers and 24 initial features
      (DenseNet-BC-40);
    * ``googlenet``: no auxiliary classifiers;
    * ``vgg11_bn``: only the first :math:`\lfloor \log_2 \min(H, W)
      \rfloor` of its five max poolings are kept, and the classifier is
      global average pooling and 512 → 512 → 512 → classes (as in CIFAR
      VGGs) instead of 25088 → 4096 → 4096 → classes.

    Args:
        input_shape (Sequence[int], optional): :math:`(C, H, W)` of the
            inputs (a leading batch size is ignored), :math:`H, W \geq 4`.
            (default: :obj:`(3, 32, 32)`)
        num_classes (int, optional): Classes. (default: :obj:`10`)
        names (Sequence[str], optional): Build only these models (names from
            :obj:`REAL_MODELS`), in this order. (default: :obj:`None`, all)

    Returns:
        List[:class:`NamedModel`]
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list,
                                                          torch.Size)) else ()
    if len(shape) == 4:
        shape = shape[1:]
    if (len(shape) != 3
            or not all(isinstance(s, int) and s >= 1 for s in shape)
            or min(shape[1:]) < _MIN_SIZE):
        raise GhnlibError(f'real_models: input_shape must be (C, H, W) of '
                          f'positive integers with H, W >= {_MIN_SIZE}, got '
                          f'{input_shape!r}')
    if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
            or num_classes < 1):
        raise GhnlibError(f'real_models: num_classes must be a positive '
                          f'integer, got {num_classes!r}')
    if names is None:
        names = REAL_MODELS
    elif isinstance(names, str) or not all(n in REAL_MODELS for n in names):
        raise GhnlibError(f'real_models: names must be a sequence of names '
                          f'from {list(REAL_MODELS)}, got {names!r}')
    try:
        import torchvision.models as models
    except (ImportError, RuntimeError) as error:
        raise GhnlibError(
            f'real_models needs torchvision, which could not be imported '
            f'({type(error).__name__}: {error}); install a torchvision '
            f'build that matches torch ({torch.__version__})') from error
    in_channels, height, width = shape
    builders = _builders(models)
    return [NamedModel(name, builders[name](in_channels, num_classes,
                                            min(height, width)))
            for name in names]
