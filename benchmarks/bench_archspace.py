"""Training over the architecture space, on CPU: architectures converted per
second, the graph cache's load time, and the GHN's own overhead per training
step on fresh architectures against the networks' own forward and backward.

    python benchmarks/bench_archspace.py --archs 200 --steps 10

A training step of a GHN on a meta-batch of M architectures costs the
networks' forward and backward with the predicted weights, plus what the GHN
adds: batching the graphs, their sweep schedule and decoding plan, the GNN
and decoder, and the backward through them. The overhead is
(step − networks) / networks, the networks timed alone with their own
weights on the same images. Prints one Markdown table.
"""
import argparse
import shutil
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from ghnlib import GraphHyperNetwork
from ghnlib.archspace import ArchSpace
from ghnlib.train import MetaBatchLoss
from ghnlib.train.arch_dataset import ArchDataset
from timing import run_times


def median_seconds(fn, repeat, warmup=1):
    return statistics.median(run_times(fn, repeat, warmup=warmup))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', type=int, default=200)
    parser.add_argument('--per-step', type=int, default=8)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (1, 3, args.image_size, args.image_size)
    space = ArchSpace(input_size=args.image_size, width=(16, 48),
                      depth=(2, 6), max_params=250_000)
    recipes = space.sample_recipes(args.archs, seed=0)
    cache = tempfile.mkdtemp()
    try:
        start = time.perf_counter()
        archs = ArchDataset(recipes, cache, input_shape=shape)
        convert = time.perf_counter() - start
        load = median_seconds(
            lambda: ArchDataset(recipes, cache, input_shape=shape), 3)
    finally:
        shutil.rmtree(cache)

    torch.manual_seed(0)
    ghn = GraphHyperNetwork()
    images = torch.randn(args.batch, *shape[1:])
    labels = torch.randint(0, 10, (args.batch, ))
    generator = torch.Generator().manual_seed(0)
    ratios, step_times, net_times = [], [], []
    for _ in range(args.steps):
        ids = torch.randperm(len(archs), generator=generator)[:args.per_step]
        models = [archs.model(int(i)) for i in ids]
        graphs = [archs.graph(int(i)) for i in ids]

        def networks():
            for model in models:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(images), labels).backward()

        def step():
            ghn.zero_grad(set_to_none=True)
            loss, _ = MetaBatchLoss(ghn, models, graphs)(images, labels)
            loss.backward()

        nets = median_seconds(networks, 1)
        full = median_seconds(step, 1, warmup=0)
        net_times.append(nets)
        step_times.append(full)
        ratios.append((full - nets) / nets)

    print(f'| measure | value ({args.threads} threads) |')
    print('|---|---|')
    print(f'| architectures converted per second | '
          f'{args.archs / convert:.1f} ({args.archs} in {convert:.1f} s) |')
    print(f'| graph cache of {args.archs}: load time | {load * 1e3:.0f} ms |')
    print(f'| step of {args.per_step} fresh architectures × {args.batch} '
          f'images | {statistics.median(step_times) * 1e3:.0f} ms |')
    print(f'| the networks alone, forward + backward | '
          f'{statistics.median(net_times) * 1e3:.0f} ms |')
    print(f'| GHN overhead / networks (median of {args.steps} steps) | '
          f'{statistics.median(ratios):.2f}× |')


if __name__ == '__main__':
    main()
