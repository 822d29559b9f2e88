r"""Latency, throughput and peak memory of :meth:`GraphHyperNetwork.predict`
on CPU.

GHN-2-sized model: hidden 32, ``max_shape`` (64, 64, 11, 11), 10 classes,
under :func:`torch.no_grad`. "Cached graph" rows predict a batch prepared
once (:meth:`GraphHyperNetwork.prepare`). Two memory regimes: the results
written into one buffer the caller owns and passes to every call
(``out=``), and results kept (every call writes into freshly allocated
memory, whose first touch costs a page fault per 4 KiB). Run under
pytest-benchmark (``make bench``) or as a script that prints Markdown
tables:

.. code-block:: bash

    python benchmarks/bench_ghn.py
"""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ghnlib import GraphHyperNetwork
from ghnlib.graph import to_graph
from ghnlib.models import get_model
from torchvision_models import import_torchvision
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
    ghn = make_ghn()
    prepared = ghn.prepare([torchvision_graph(name)])
    out = prepared.empty_output()
    with torch.no_grad():
        result = benchmark(ghn.predict, prepared, out=out)
    assert len(result) == 1


@pytest.mark.parametrize('batch_size', [1, 8, 64])
def bench_predict_resnet56_batch(benchmark, batch_size):
    ghn = make_ghn()
    prepared = ghn.prepare([ghn.graph_of(get_model('resnet56'))] * batch_size)
    out = prepared.empty_output()
    with torch.no_grad():
        result = benchmark(ghn.predict, prepared, out=out)
    assert len(result) == batch_size


def timed(fn, repeat, keep):
    """Median seconds of ``fn``; with ``keep`` the results of each call
    stay referenced until the next call has returned."""
    kept = [None]

    def call():
        out = fn()
        if keep:
            kept[0] = out

    return statistics.median(run_times(call, repeat, warmup=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.parse_args()
    torch.set_grad_enabled(False)
    ghn = make_ghn()
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{ghn}\n')
    print('| case | into one buffer (`out=`): median ms | architectures/s '
          '| results kept: median ms | architectures/s |')
    print('|---|---|---|---|---|')

    def row(case, fn, count, repeat, size):
        """``fn(out)`` predicts into ``out``, or into fresh memory for
        :obj:`None`; ``size`` is the length of the buffer."""
        buffer = torch.empty(size)
        reused = timed(lambda: fn(buffer), repeat, keep=False)
        kept = timed(lambda: fn(None), repeat, keep=True)
        print(f'| {case} | {reused * 1e3:.1f} | {count / reused:.1f} '
              f'| {kept * 1e3:.1f} | {count / kept:.1f} |')

    for name in ('resnet50', 'vit_b_16'):
        model = import_torchvision().models.get_model(name)
        graph = to_graph(model, input_shape=(1, 3, 224, 224))
        prepared = ghn.prepare([graph])
        size = prepared.num_elements
        row(f'{name}, cached graph',
            lambda out: ghn.predict(prepared, out=out), 1, 9, size)
        row(f'{name}, converted in the call', lambda out: ghn.predict(
            [to_graph(model, input_shape=(1, 3, 224, 224))], out=out), 1, 5,
            size)
        # init_ decodes into the model's own (already touched) parameters;
        # the two columns are the same regime here.
        row(f'{name}, `init_` (cached graph) into the model',
            lambda out: ghn.init_(model, graph=prepared), 1, 9, 0)
    for arch in ('resnet20', 'resnet56'):
        graph = ghn.graph_of(get_model(arch))
        for batch_size in (1, 8, 64):
            prepared = ghn.prepare([graph] * batch_size)
            row(f'{batch_size} × {arch}',
                lambda out: ghn.predict(prepared, out=out), batch_size, 5,
                prepared.num_elements)

    print('\nPeak memory (resident set, MB) of a fresh process predicting '
          'ResNet-56 batches three times (`ghn_peak_memory.py`):\n')
    sys.stdout.flush()
    subprocess.run([sys.executable, str(Path(__file__).with_name(
        'ghn_peak_memory.py'))], check=True)

if __name__ == '__main__':
    sys.exit(main())
