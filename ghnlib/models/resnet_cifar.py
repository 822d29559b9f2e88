r"""ResNets for CIFAR-sized inputs from the `"Deep Residual Learning for Image
Recognition" <https://arxiv.org/abs/1512.03385>`_ paper (section 4.2)."""
from typing import Callable, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ghnlib.models.registry import register_model

__all__ = [
    'CifarResNet',
    'BasicBlock',
    'ShortcutA',
    'resnet20',
    'resnet32',
    'resnet44',
    'resnet56',
    'resnet110',
]

SHORTCUTS = ('A', 'B')


class ShortcutA(nn.Module):
    r"""The parameter-free shortcut (option A) from the `"Deep Residual
    Learning for Image Recognition" <https://arxiv.org/abs/1512.03385>`_
    paper: the input is subsampled spatially by taking every
    :obj:`stride`-th pixel and the new channels are zeros, appended after the
    :obj:`in_channels` original ones.

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels, at least
            :obj:`in_channels`.
        stride (int, optional): The spatial subsampling factor.
            (default: :obj:`2`)
    """
    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f'ShortcutA can only add channels, got '
                             f'in_channels={in_channels} > '
                             f'out_channels={out_channels}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - self.in_channels
        if extra > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'stride={self.stride}')


class BasicBlock(nn.Module):
    r"""The residual block of two :math:`3 \times 3` convolutions from the
    `"Deep Residual Learning for Image Recognition"
    <https://arxiv.org/abs/1512.03385>`_ paper.

    .. math::
        \mathbf{y} = \mathrm{ReLU}\left(\mathrm{BN}(\mathrm{conv}(
        \mathrm{ReLU}(\mathrm{BN}(\mathrm{conv}(\mathbf{x}))))) +
        \mathrm{shortcut}(\mathbf{x})\right)

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels.
        stride (int, optional): Stride of the first convolution.
            (default: :obj:`1`)
        shortcut (str, optional): How the shortcut matches shapes when they
            change: :obj:`'A'` (subsampling and zero channels, see
            :class:`ShortcutA`) or :obj:`'B'` (a :math:`1 \times 1`
            convolution and batch norm). It is the identity when the shape
            does not change. (default: :obj:`'A'`)
    """
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = 'A'):
        super().__init__()
        _check_shortcut(shortcut)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride,
                               padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == 'A':
            self.shortcut = ShortcutA(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride,
                          bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    r"""The :math:`6n+2`-layer ResNet for CIFAR-10 from the `"Deep Residual
    Learning for Image Recognition" <https://arxiv.org/abs/1512.03385>`_
    paper (section 4.2).

    A :math:`3 \times 3` convolution with :obj:`width` channels is followed by
    three stages of :obj:`n` :class:`BasicBlock` modules with :obj:`width`,
    :obj:`2 * width` and :obj:`4 * width` channels (the second and third
    stages start with stride 2), global average pooling and a linear
    classifier.

    Convolutions are initialised with Kaiming normal (fan-out, ReLU gain),
    batch norm weights with ones and biases with zeros; the classifier keeps
    the PyTorch default initialisation.

    Args:
        n (int): Number of blocks per stage; the network has :math:`6n+2`
            layers.
        num_classes (int, optional): Number of output classes.
            (default: :obj:`10`)
        in_channels (int, optional): Number of input channels.
            (default: :obj:`3`)
        shortcut (str, optional): The shortcut when a block changes shape:
            :obj:`'A'` (parameter-free, :class:`ShortcutA`) or :obj:`'B'`
            (:math:`1 \times 1` convolution and batch norm).
            (default: :obj:`'A'`)
        width (int, optional): Number of channels of the stem and the first
            stage. (default: :obj:`16`)
    """
    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3,
                 shortcut: str = 'A', width: int = 16):
        super().__init__()
        _check_shortcut(shortcut)
        if n < 1:
            raise ValueError(f'n (blocks per stage) must be at least 1, '
                             f'got {n}')
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _stage(width, width, n, 1, shortcut)
        self.layer2 = _stage(width, 2 * width, n, 2, shortcut)
        self.layer3 = _stage(2 * width, 4 * width, n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out',
                                        nonlinearity='relu')
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _check_shortcut(shortcut: str) -> None:
    if shortcut not in SHORTCUTS:
        allowed = ' or '.join(repr(s) for s in SHORTCUTS)
        raise ValueError(f'shortcut must be {allowed}, got {shortcut!r}')


def _stage(in_channels: int, out_channels: int, n: int, stride: int,
           shortcut: str) -> nn.Sequential:
    blocks: List[nn.Module] = [
        BasicBlock(in_channels, out_channels, stride, shortcut)
    ]
    blocks += [
        BasicBlock(out_channels, out_channels, 1, shortcut)
        for _ in range(n - 1)
    ]
    return nn.Sequential(*blocks)


_BUILDER_DOC = r"""The ResNet-{depth} for CIFAR-10 ({n} blocks per stage) from
    the `"Deep Residual Learning for Image Recognition"
    <https://arxiv.org/abs/1512.03385>`_ paper (section 4.2), see
    :class:`CifarResNet`.

    Args:
        num_classes (int, optional): Number of output classes.
            (default: :obj:`10`)
        in_channels (int, optional): Number of input channels.
            (default: :obj:`3`)
        shortcut (str, optional): The shortcut when a block changes shape:
            :obj:`'A'` (parameter-free, :class:`ShortcutA`) or :obj:`'B'`
            (:math:`1 \times 1` convolution and batch norm).
            (default: :obj:`'A'`)
        width (int, optional): Number of channels of the stem and the first
            stage; the later stages have twice and four times as many.
            (default: :obj:`16`)
    """


def _builder_doc(n: int) -> Callable[[Callable], Callable]:
    def decorator(builder: Callable) -> Callable:
        builder.__doc__ = _BUILDER_DOC.format(depth=6 * n + 2, n=n)
        return builder

    return decorator


@register_model()
@_builder_doc(3)
def resnet20(*, num_classes: int = 10, in_channels: int = 3,
             shortcut: str = 'A', width: int = 16) -> CifarResNet:
    return CifarResNet(3, num_classes, in_channels, shortcut, width)


@register_model()
@_builder_doc(5)
def resnet32(*, num_classes: int = 10, in_channels: int = 3,
             shortcut: str = 'A', width: int = 16) -> CifarResNet:
    return CifarResNet(5, num_classes, in_channels, shortcut, width)


@register_model()
@_builder_doc(7)
def resnet44(*, num_classes: int = 10, in_channels: int = 3,
             shortcut: str = 'A', width: int = 16) -> CifarResNet:
    return CifarResNet(7, num_classes, in_channels, shortcut, width)


@register_model()
@_builder_doc(9)
def resnet56(*, num_classes: int = 10, in_channels: int = 3,
             shortcut: str = 'A', width: int = 16) -> CifarResNet:
    return CifarResNet(9, num_classes, in_channels, shortcut, width)


@register_model()
@_builder_doc(18)
def resnet110(*, num_classes: int = 10, in_channels: int = 3,
              shortcut: str = 'A', width: int = 16) -> CifarResNet:
    return CifarResNet(18, num_classes, in_channels, shortcut, width)
