r"""One Noise-GHN training step against one plain SGD step of the same
networks.

The Noise-GHN step (the paper's setup): ResNet-32, -44 and -56, two noise
draws each, 64 CIFAR-sized images, forward, backward and Adam. The plain
step: the same three networks trained directly with SGD on the same batch.
Run under pytest-benchmark (``make bench``) or as a script that prints one
Markdown table (CPU, and CUDA when a GPU is present):

.. code-block:: bash

    python benchmarks/bench_train_step.py [--image-size 32]
"""
import argparse
import statistics
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ghnlib import GraphHyperNetwork
from ghnlib.models import get_model
from ghnlib.train.ghn_trainer import GHNTrainer, GHNTrainingConfig
from timing import run_times

ARCHS = ('resnet32', 'resnet44', 'resnet56')


def _batch(image_size, device):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(64, 3, image_size, image_size, generator=generator)
    labels = torch.randint(0, 10, (64, ), generator=generator)
    return images.to(device), labels.to(device)


def ghn_step(image_size=32, device='cpu', noise_dim=8):
    """A callable running one GHN training step on a fixed batch."""
    images, labels = _batch(image_size, device)
    data = TensorDataset(images.cpu(), labels.cpu())
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(noise_dim=noise_dim)
    trainer = GHNTrainer(ghn, data, data, GHNTrainingConfig(archs=ARCHS),
                         device=device, progress=False)
    return lambda: trainer.train_step(images, labels)


def sgd_step(image_size=32, device='cpu'):
    """A callable running one plain SGD step of each of the three networks."""
    images, labels = _batch(image_size, device)
    models = [get_model(name).to(device).train() for name in ARCHS]
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9,
                                  weight_decay=1e-4) for m in models]

    def step():
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
    return step


def bench_noise_ghn_step(benchmark):
    benchmark(ghn_step())


def bench_plain_sgd_step(benchmark):
    benchmark(sgd_step())


def _synchronised(fn, device):
    if device == 'cuda':
        return lambda: (fn(), torch.cuda.synchronize())
    return fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--image-size', type=int, default=32)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args(argv)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, '
          f'{args.image_size}×{args.image_size} images, batch 64\n')
    print('| device | step | median ms | min ms | × plain SGD |')
    print('|---|---|---|---|---|')
    for device in devices:
        name = torch.cuda.get_device_name() if device == 'cuda' else 'CPU'
        cases = [('plain SGD, 3 networks', sgd_step(args.image_size, device)),
                 ('GHN, 3 architectures', ghn_step(args.image_size, device, 0)),
                 ('Noise GHN, 3 architectures × 2 draws',
                  ghn_step(args.image_size, device, 8))]
        base = None
        for label, fn in cases:
            times = run_times(_synchronised(fn, device), args.repeat, warmup=2)
            median = statistics.median(times)
            base = base or median
            print(f'| {name} | {label} | {median * 1e3:.1f} | '
                  f'{min(times) * 1e3:.1f} | {median / base:.2f} |')


if __name__ == '__main__':
    sys.exit(main())
