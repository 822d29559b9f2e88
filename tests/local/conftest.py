import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from kernel_patterns import standardise


@pytest.fixture(scope='session')
def digit_slices():
    """Standardised 3x3 slices of the second convolution of a small CNN
    trained for 100 SGD steps on the scikit-learn digits."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)
    images = standardise(images).unsqueeze(1).repeat(1, 3, 1, 1)
    labels = torch.tensor(digits.target)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 10))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        index = torch.randint(len(images), (64,), generator=generator)
        loss = F.cross_entropy(net(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (net(images).argmax(1) == labels).float().mean()
    assert accuracy > 0.3  # the weights did learn something
    return standardise(net[2].weight.detach().reshape(-1, 3, 3))
