r"""The small CNN of the model zoos from the `"Self-Supervised
Representation Learning on Neural Network Weights for Model Characteristic
Prediction" <https://arxiv.org/abs/2110.15288>`_ and `"Hyper-Representations
as Generative Models: Sampling Unseen Neural Network Weights"
<https://arxiv.org/abs/2209.14733>`_ papers."""
from typing import Callable, Dict

import torch
import torch.nn as nn

from ghnlib.models.registry import register_model

__all__ = ['SmallCNN', 'small_cnn']

ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    'tanh': nn.Tanh,
    'relu': nn.ReLU,
    'gelu': nn.GELU,
}

_MIN_INPUT_SIZE = 20


def _features_size(input_size: int) -> int:
    size = (input_size - 4) // 2
    size = (size - 4) // 2
    return size - 1


class SmallCNN(nn.Module):
    r"""The small CNN of the hyper-representation model zoos from the
    `"Self-Supervised Representation Learning on Neural Network Weights for
    Model Characteristic Prediction" <https://arxiv.org/abs/2110.15288>`_
    paper (Schürholt et al., 2021), also used in `"Hyper-Representations as
    Generative Models" <https://arxiv.org/abs/2209.14733>`_ (2022).

    Three convolutions with 8, 6 and 4 channels and kernel sizes 5, 5 and 2
    (the first two followed by :math:`2 \times 2` max pooling), then a linear
    layer with 20 units and a linear classifier; every layer but the last is
    followed by the activation. With the defaults (:math:`28 \times 28`
    MNIST inputs) it has 2,464 parameters. Layers keep the PyTorch default
    initialisation.

    Args:
        in_channels (int, optional): Number of input channels.
            (default: :obj:`1`)
        num_classes (int, optional): Number of output classes.
            (default: :obj:`10`)
        input_size (int, optional): Height and width of the (square) inputs,
            at least 20; it sets the input features of the first linear
            layer. (default: :obj:`28`)
        activation (str, optional): The activation, :obj:`'tanh'`,
            :obj:`'relu'` or :obj:`'gelu'`. (default: :obj:`'tanh'`)
    """
    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 input_size: int = 28, activation: str = 'tanh'):
        super().__init__()
        if activation not in ACTIVATIONS:
            allowed = ', '.join(repr(a) for a in ACTIVATIONS)
            raise ValueError(f'activation must be one of {allowed}, '
                             f'got {activation!r}')
        if input_size < _MIN_INPUT_SIZE:
            raise ValueError(
                f'input_size={input_size} is too small for the three '
                f'convolutions of SmallCNN: it must be at least '
                f'{_MIN_INPUT_SIZE}')
        act = ACTIVATIONS[activation]
        size = _features_size(input_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 5),
            nn.MaxPool2d(2),
            act(),
            nn.Conv2d(8, 6, 5),
            nn.MaxPool2d(2),
            act(),
            nn.Conv2d(6, 4, 2),
            act(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(4 * size * size, 20),
            act(),
            nn.Linear(20, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model()
def small_cnn(*, in_channels: int = 1, num_classes: int = 10,
              input_size: int = 28, activation: str = 'tanh') -> SmallCNN:
    r"""The small CNN of the hyper-representation model zoos from the
    `"Self-Supervised Representation Learning on Neural Network Weights for
    Model Characteristic Prediction" <https://arxiv.org/abs/2110.15288>`_
    paper, see :class:`SmallCNN`.

    Args:
        in_channels (int, optional): Number of input channels.
            (default: :obj:`1`)
        num_classes (int, optional): Number of output classes.
            (default: :obj:`10`)
        input_size (int, optional): Height and width of the (square) inputs,
            at least 20. (default: :obj:`28`)
        activation (str, optional): The activation, :obj:`'tanh'`,
            :obj:`'relu'` or :obj:`'gelu'`. (default: :obj:`'tanh'`)
    """
    return SmallCNN(in_channels, num_classes, input_size, activation)
