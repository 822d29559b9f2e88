r"""Forward time of :class:`ghnlib.nn.GatedGNN` against the node-by-node
reference :func:`reference_gated_gnn`: the level-synchronous PyTorch
sweeps (used whenever gradients are needed) and the compiled inference
sweep ``ghnlib::gated_gnn_sweep`` (used under :func:`torch.no_grad` on CPU).

Hidden size 32, one round, under :func:`torch.no_grad`, on torchvision's
resnet50 graph (1×3×224×224) and on a batch of CIFAR ResNet-56 graphs.
Building the :class:`SweepSchedule` (and the reference's Python adjacency
lists) is timed apart from the forward pass, since it is done once per
graph. Run under pytest-benchmark (``make bench``) or as a script that
prints one Markdown table:

.. code-block:: bash

    python benchmarks/bench_gated_gnn.py [--batch 64] [--repeat 20]
"""
import argparse
import contextlib
import functools
import os
import statistics

import pytest
import torch
from torch_geometric.data import Batch

from ghnlib.graph import to_graph
from ghnlib.models import get_model
from ghnlib.nn import GatedGNN, SweepSchedule
from ghnlib.nn.reference_gated_gnn import (reference_adjacency,
                                           reference_gated_gnn)
from timing import run_times
from torchvision_models import import_torchvision

HIDDEN = 32
BATCH = 64


@functools.lru_cache(maxsize=None)
def resnet50_graph():
    torchvision = import_torchvision()
    with torch.device('meta'):
        model = torchvision.models.resnet50()
    return to_graph(model, input_shape=(1, 3, 224, 224))


@functools.lru_cache(maxsize=None)
def resnet56_batch(size=BATCH):
    graph = to_graph(get_model('resnet56'))
    return Batch.from_data_list([graph] * size)


CASES = {
    'resnet50': resnet50_graph,
    f'resnet56 x{BATCH}': resnet56_batch,
}


@contextlib.contextmanager
def level_sweeps():
    """Runs GatedGNN on its PyTorch level-by-level sweeps, not the compiled
    one."""
    old = os.environ.get('GHNLIB_DISABLE_EXTENSION')
    os.environ['GHNLIB_DISABLE_EXTENSION'] = '1'
    try:
        yield
    finally:
        if old is None:
            del os.environ['GHNLIB_DISABLE_EXTENSION']
        else:
            os.environ['GHNLIB_DISABLE_EXTENSION'] = old


def setup(graph, seed=0):
    torch.manual_seed(seed)
    gnn = GatedGNN(HIDDEN).eval()
    h = torch.randn(graph.num_nodes, HIDDEN)
    return gnn, h


def edges(graph):
    return (graph.edge_index, graph.virtual_edge_index,
            graph.virtual_edge_dist)


@pytest.mark.parametrize('case', CASES)
def bench_sweep_schedule(benchmark, case):
    graph = CASES[case]()
    schedule = benchmark(SweepSchedule.from_data, graph)
    assert schedule.num_nodes == graph.num_nodes


@pytest.mark.parametrize('case', CASES)
def bench_gated_gnn_levels(benchmark, case):
    graph = CASES[case]()
    gnn, h = setup(graph)
    schedule = SweepSchedule.from_data(graph)
    with torch.no_grad(), level_sweeps():
        assert not gnn.uses_compiled_sweep(h)
        out = benchmark(gnn, h, schedule)
    assert out.shape == h.shape


@pytest.mark.parametrize('case', CASES)
def bench_gated_gnn_compiled(benchmark, case):
    graph = CASES[case]()
    gnn, h = setup(graph)
    schedule = SweepSchedule.from_data(graph)
    with torch.no_grad():
        assert gnn.uses_compiled_sweep(h)
        out = benchmark(gnn, h, schedule)
    assert out.shape == h.shape


@pytest.mark.parametrize('case', CASES)
def bench_gated_gnn_reference(benchmark, case):
    graph = CASES[case]()
    gnn, h = setup(graph)
    adjacency = reference_adjacency(*edges(graph), graph.num_nodes)
    with torch.no_grad():
        out = benchmark.pedantic(reference_gated_gnn, (gnn, h, *edges(graph)),
                                 dict(adjacency=adjacency), rounds=3,
                                 warmup_rounds=0)
    assert out.shape == h.shape


def _ms(times):
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=BATCH,
                        help='ResNet-56 graphs in the batch')
    parser.add_argument('--repeat', type=int, default=20,
                        help='measured runs of the level-synchronous forward')
    parser.add_argument('--ref-repeat', type=int, default=3,
                        help='measured runs of the reference')
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'hidden {HIDDEN}, 1 round, no_grad; medians in milliseconds\n')
    print('| graph | nodes | edges | virtual edges | levels fwd/bwd '
          '| schedule build | reference lists build | reference forward '
          '| level-sync forward | speed-up | compiled forward | speed-up '
          '| level-sync fwd+bwd (autograd) | max abs diff level-sync / '
          'compiled |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    cases = [('resnet50 (224×224)', resnet50_graph()),
             (f'{args.batch} × ResNet-56 (CIFAR)',
              resnet56_batch(args.batch))]
    for name, graph in cases:
        gnn, h = setup(graph)
        build = run_times(lambda: SweepSchedule.from_data(graph),
                       max(3, args.repeat // 4), warmup=1)
        schedule = SweepSchedule.from_data(graph)
        lists = run_times(lambda: reference_adjacency(*edges(graph),
                                                   graph.num_nodes),
                       max(1, args.ref_repeat), warmup=0)
        adjacency = reference_adjacency(*edges(graph), graph.num_nodes)
        with level_sweeps():
            fast = run_times(lambda: gnn(h, schedule), args.repeat)
            levels_out = gnn(h, schedule)
        compiled = run_times(lambda: gnn(h, schedule), args.repeat)
        compiled_out = gnn(h, schedule)
        slow = run_times(lambda: reference_gated_gnn(gnn, h, *edges(graph),
                                                  adjacency=adjacency),
                      args.ref_repeat, warmup=0)
        expected = reference_gated_gnn(gnn, h, *edges(graph),
                                       adjacency=adjacency)
        diff = (levels_out - expected).abs().max().item()
        compiled_diff = (compiled_out - expected).abs().max().item()

        def train_step():
            with torch.enable_grad():
                x = h.clone().requires_grad_()
                gnn(x, schedule).square().sum().backward()

        train = run_times(train_step, max(3, args.repeat // 4), warmup=1)
        gnn.zero_grad()
        print(f'| {name} | {graph.num_nodes} | {graph.edge_index.size(1)} | '
              f'{graph.virtual_edge_index.size(1)} | '
              f'{len(schedule.forward)}/{len(schedule.backward)} | '
              f'{_ms(build):.1f} | {_ms(lists):.1f} | {_ms(slow):.1f} | '
              f'{_ms(fast):.1f} | {_ms(slow) / _ms(fast):.1f}× | '
              f'{_ms(compiled):.1f} | {_ms(slow) / _ms(compiled):.1f}× | '
              f'{_ms(train):.1f} | {diff:.1e} / {compiled_diff:.1e} |')


if __name__ == '__main__':
    main()
