r"""Latency and throughput of :meth:`GraphHyperNetwork.predict` on CPU.

GHN-2-sized model: hidden 32, ``max_shape`` (64, 64, 11, 11), 10 classes,
under :func:`torch.no_grad`. Run under pytest-benchmark (``make bench``) or
as a script that prints one Markdown table:

.. code-block:: bash

    python benchmarks/bench_ghn.py
"""
import statistics
import sys

import pytest
import torch

from ghnlib import GraphHyperNetwork
from ghnlib.graph import to_graph
from ghnlib.models import get_model
from ghnlib.utils.torchvision import import_torchvision
from timing import run_times


def make_ghn():
    torch.manual_seed(0)
    return GraphHyperNetwork(hidden_channels=32, max_shape=(64, 64, 11, 11),
                             num_classes=10)


def torchvision_graph(name):
    with torch.device('meta'):
        model = import_torchvision().models.get_model(name)
    return to_graph(model, input_shape=(1, 3, 224, 224))


@pytest.mark.parametrize('name', ['resnet50', 'vit_b_16'])
def bench_predict_cached_graph(benchmark, name):
    ghn, graph = make_ghn(), torchvision_graph(name)
    with torch.no_grad():
        out = benchmark(ghn.predict, [graph])
    assert len(out) == 1


@pytest.mark.parametrize('batch_size', [1, 8, 64])
def bench_predict_resnet56_batch(benchmark, batch_size):
    ghn = make_ghn()
    graph = ghn.graph_of(get_model('resnet56'))
    with torch.no_grad():
        out = benchmark(ghn.predict, [graph] * batch_size)
    assert len(out) == batch_size


def main():
    torch.set_grad_enabled(False)
    ghn = make_ghn()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{ghn}\n')
    print('| case | median ms | architectures/s |')
    print('|---|---|---|')
    for name in ('resnet50', 'vit_b_16'):
        with torch.device('meta'):
            model = import_torchvision().models.get_model(name)
        graph = to_graph(model, input_shape=(1, 3, 224, 224))
        cached = statistics.median(run_times(lambda: ghn.predict([graph]), 5, warmup=1))
        uncached = statistics.median(run_times(lambda: ghn.predict(
            [to_graph(model, input_shape=(1, 3, 224, 224))]), 5, warmup=1))
        print(f'| {name}, cached graph | {cached * 1e3:.1f} | {1 / cached:.1f} |')
        print(f'| {name}, converted in the call | {uncached * 1e3:.1f} | '
              f'{1 / uncached:.1f} |')
    for arch in ('resnet20', 'resnet56'):
        graph = ghn.graph_of(get_model(arch))
        for batch_size in (1, 8, 64):
            seconds = statistics.median(run_times(
                lambda: ghn.predict([graph] * batch_size), 3, warmup=1))
            print(f'| {batch_size} × {arch} | {seconds * 1e3:.1f} | '
                  f'{batch_size / seconds:.1f} |')
    import resource
    print(f'\nprocess peak RSS at the end (torch, all graphs and every case '
          f'above): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB')

if __name__ == '__main__':
    sys.exit(main())
