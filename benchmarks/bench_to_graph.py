r"""Conversion time of :func:`ghnlib.graph.to_graph`, virtual edges included.

Run under pytest-benchmark (``make bench``) or as a script that prints one
Markdown table with two references: the model's real forward pass at the same
resolution (what a builder that walks the autograd graph must pay at least)
and ``torch.fx`` tracing followed by fake-tensor shape propagation.

.. code-block:: bash

    python benchmarks/bench_to_graph.py [--size 224] [--repeat 30]
"""
import argparse
import statistics

import pytest
import torch

from ghnlib.graph import to_graph
from torchvision_models import import_torchvision
from timing import run_times

MODELS = ('resnet50', 'vit_b_16', 'densenet121')


def build(name, size=224):
    torchvision = import_torchvision()
    options = {'image_size': size} if name.startswith('vit') else {}
    return torchvision.models.get_model(name, **options).eval()


@pytest.mark.parametrize('name', MODELS)
def bench_to_graph(benchmark, name):
    model = build(name)
    x = torch.empty(1, 3, 224, 224, device='meta')
    graph = benchmark(to_graph, model, x)
    assert graph.num_params == sum(p.numel() for p in model.parameters())


def _fx_fake_shapes(model, size):
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    traced = torch.fx.symbolic_trace(model)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        ShapeProp(traced, fake_mode=mode).propagate(
            mode.from_tensor(torch.empty(1, 3, size, size)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--repeat', type=int, default=30)
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'input 1x3x{args.size}x{args.size}; milliseconds\n')
    print('| model | nodes | virtual edges | to_graph median | to_graph min '
          '| real forward median | fx + fake-tensor shapes median |')
    print('|---|---|---|---|---|---|---|')
    for name in MODELS:
        model = build(name, args.size)
        x = torch.empty(1, 3, args.size, args.size, device='meta')
        graph = to_graph(model, x)
        ours = run_times(lambda: to_graph(model, x), args.repeat)
        real_input = torch.randn(1, 3, args.size, args.size)
        forward = run_times(lambda: model(real_input), max(3, args.repeat // 5))
        fake = run_times(lambda: _fx_fake_shapes(model, args.size), 3, warmup=1)
        print(f'| {name} | {graph.num_nodes} | '
              f'{graph.virtual_edge_index.size(1)} | '
              f'{statistics.median(ours) * 1e3:.1f} | {min(ours) * 1e3:.1f} | '
              f'{statistics.median(forward) * 1e3:.1f} | '
              f'{statistics.median(fake) * 1e3:.1f} |')


if __name__ == '__main__':
    main()
