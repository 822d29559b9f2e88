r"""Batched tile-and-normalise: the compiled op of ``ghnlib._C`` against the
grouped pure-PyTorch :func:`~ghnlib.ops.tile_normalize` (what runs without
the extension, ``GHNLIB_DISABLE_EXTENSION=1``) and the per-tensor
:func:`~ghnlib.ops.tile_normalize_reference`.

Workloads (float32):

* *resnet50, (64, 64, 3, 3) blocks*: every parameter tensor of torchvision's
  resnet50 fitted in one call, each from its own decoder-sized block
  :math:`[64, 64, 3, 3]` (most targets tile it);
* *resnet50, GHN calls*: the calls :meth:`GraphHyperNetwork.predict` makes
  for resnet50 (``max_shape`` (64, 64, 3, 3): one per decoded crop group,
  one for all vectors), recorded once and replayed;
* *64 × resnet56, GHN calls*: the same for a batch of 64 CIFAR ResNet-56s.

GB/s counts the least traffic the op needs: each source element some output
reads, once, and each output element, once. *fwd+bwd* also runs the
backward pass from given output gradients (training the GHN). With glibc,
the extension's one flat output (over 32 MB here) is mapped afresh on every
call and pays first-touch page faults, which the grouped version's smaller
per-shape blocks avoid by reusing the heap; run with
``MALLOC_MMAP_THRESHOLD_=4000000000`` to time both without them. Run under
pytest-benchmark (``make bench``) or as a script that prints one Markdown
table:

.. code-block:: bash

    python benchmarks/bench_tile_normalize.py [--repeat 10]
"""
import argparse
import contextlib
import functools
import math
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from unittest import mock

import pytest
import torch
from torch import Tensor

import ghnlib.nn.graph_hypernetwork as graph_hypernetwork
from ghnlib import GraphHyperNetwork
from ghnlib.graph import to_graph
from ghnlib.models import get_model
from ghnlib.ops import backend, tile_normalize, tile_normalize_reference
from ghnlib.ops.extension import DISABLE_EXTENSION_ENV
from torchvision_models import import_torchvision
from timing import run_times

MAX_SHAPE = (64, 64, 3, 3)
BATCH = 64
# A case slower than this is timed once (its first call), not repeated.
SLOW_SECONDS = 2.0

# One call of the op: (src, target shapes, scale, shift).
Call = Tuple[Tensor, List[Tuple[int, int, int, int]], Tensor, Optional[Tensor]]


@contextlib.contextmanager
def extension_disabled(disabled: bool):
    previous = os.environ.get(DISABLE_EXTENSION_ENV)
    os.environ[DISABLE_EXTENSION_ENV] = '1' if disabled else '0'
    try:
        yield
    finally:
        if previous is None:
            del os.environ[DISABLE_EXTENSION_ENV]
        else:
            os.environ[DISABLE_EXTENSION_ENV] = previous


# name -> (function, whether the extension is disabled while it runs)
IMPLEMENTATIONS = {
    'extension': (tile_normalize, False),
    'grouped PyTorch': (tile_normalize, True),
    'reference': (tile_normalize_reference, True),
}


def resnet50():
    with torch.device('meta'):
        return import_torchvision().models.resnet50()


def padded(shape: Sequence[int]) -> Tuple[int, int, int, int]:
    return tuple(list(shape) + [1] * (4 - len(shape)))


@functools.lru_cache(maxsize=None)
def resnet50_blocks() -> Tuple[Call, ...]:
    targets = [padded(p.shape) for p in resnet50().parameters()]
    generator = torch.Generator().manual_seed(0)
    count = len(targets)
    return ((torch.randn(count, *MAX_SHAPE, generator=generator), targets,
             torch.rand(count, generator=generator),
             torch.randn(count, generator=generator)), )


def recorded_ghn_calls(graphs) -> Tuple[Call, ...]:
    """The tile_normalize calls of one differentiable
    GraphHyperNetwork.predict (the training path: every weight group goes
    through the op; without gradients only tiled weights do)."""
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=32, max_shape=MAX_SHAPE,
                            num_classes=10)
    calls = []

    def record(src, shapes, scale, shift=None):
        calls.append((src.detach().clone(), [tuple(s) for s in shapes],
                      scale.detach().clone(),
                      None if shift is None else shift.detach().clone()))
        return tile_normalize(src, shapes, scale, shift)

    with mock.patch.object(graph_hypernetwork, 'tile_normalize', record):
        ghn.predict(graphs)
    return tuple(calls)


@functools.lru_cache(maxsize=None)
def resnet50_ghn_calls() -> Tuple[Call, ...]:
    return recorded_ghn_calls([to_graph(resnet50(),
                                        input_shape=(1, 3, 224, 224))])


@functools.lru_cache(maxsize=None)
def resnet56_batch_ghn_calls() -> Tuple[Call, ...]:
    return recorded_ghn_calls([to_graph(get_model('resnet56'))] * BATCH)


CASES: Dict[str, Callable[[], Tuple[Call, ...]]] = {
    'resnet50, (64, 64, 3, 3) blocks': resnet50_blocks,
    'resnet50, GHN calls': resnet50_ghn_calls,
    f'{BATCH} × resnet56, GHN calls': resnet56_batch_ghn_calls,
}

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def on_device(calls: Sequence[Call], device: str, requires_grad: bool = False):
    moved = []
    for src, targets, scale, shift in calls:
        src, scale = src.to(device), scale.to(device)
        shift = None if shift is None else shift.to(device)
        if requires_grad:
            src.requires_grad_()
            scale.requires_grad_()
            if shift is not None:
                shift.requires_grad_()
        moved.append((src, targets, scale, shift))
    return moved


def moved_bytes(calls: Sequence[Call]) -> int:
    total = 0
    for src, targets, _, _ in calls:
        sizes = src.shape[1:]
        read = sum(math.prod(min(s, t) for s, t in zip(sizes, target))
                   for target in targets)
        written = sum(math.prod(target) for target in targets)
        total += (read + written) * src.element_size()
    return total


def forward(implementation: str, calls: Sequence[Call], device: str):
    function, disabled = IMPLEMENTATIONS[implementation]

    def run():
        # All results stay alive until the pass ends, as in predict(): the
        # allocator cannot hand one call's freed buffer to the next.
        with extension_disabled(disabled), torch.no_grad():
            fitted = [function(*call) for call in calls]
        if device == 'cuda':
            torch.cuda.synchronize()
        return fitted
    return run


def forward_backward(implementation: str, calls: Sequence[Call], device: str):
    function, disabled = IMPLEMENTATIONS[implementation]
    output_grads = [[torch.ones(target, device=device) for target in targets]
                    for _, targets, _, _ in calls]

    def run():
        with extension_disabled(disabled):
            fitted = [function(*call) for call in calls]
            torch.autograd.backward(
                [y for outputs in fitted for y in outputs],
                [g for grads in output_grads for g in grads])
        if device == 'cuda':
            torch.cuda.synchronize()
    return run


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('implementation', list(IMPLEMENTATIONS))
@pytest.mark.parametrize('case', list(CASES))
def bench_tile_normalize_forward(benchmark, case, implementation, device):
    benchmark(forward(implementation, on_device(CASES[case](), device), device))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('implementation', list(IMPLEMENTATIONS))
@pytest.mark.parametrize('case', list(CASES))
def bench_tile_normalize_forward_backward(benchmark, case, implementation,
                                          device):
    if implementation != 'extension' and case.startswith(f'{BATCH} ×'):
        pytest.skip('minutes per round: the backward of thousands of '
                    'per-tensor views of one block grows quadratically; '
                    'main() times it once')
    calls = on_device(CASES[case](), device, requires_grad=True)
    benchmark(forward_backward(implementation, calls, device))


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    """Median of :obj:`repeat` timed calls after one untimed call; the
    first call's time alone where it exceeds :obj:`SLOW_SECONDS`."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    if first > SLOW_SECONDS:
        return first
    return statistics.median(run_times(run, repeat, warmup=0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args()
    if backend() != 'extension':
        raise SystemExit('ghnlib._C is not in use; build it with `pip install '
                         '--no-build-isolation -e .` (and unset '
                         f'{DISABLE_EXTENSION_ENV}).')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'float32, median of {args.repeat} runs after one warm-up (one run '
          f'where that takes over {SLOW_SECONDS:.0f} s)\n')
    others = [name for name in IMPLEMENTATIONS if name != 'extension']
    print('| device | case | pass | tensors | MB moved | extension ms | '
          'extension GB/s | '
          + ' | '.join(f'{name} ms' for name in others) + ' | '
          + ' | '.join(f'speed-up vs {name}' for name in others) + ' |')
    print('|---' * (7 + 2 * len(others)) + '|')
    for device in DEVICES:
        for case, make_calls in CASES.items():
            calls = make_calls()
            tensors = sum(len(targets) for _, targets, _, _ in calls)
            megabytes = moved_bytes(calls) / 1e6
            for label, make_run, requires_grad in (
                    ('fwd', forward, False),
                    ('fwd+bwd', forward_backward, True)):
                moved = on_device(calls, device, requires_grad)
                seconds = {name: median_seconds(make_run(name, moved, device),
                                                args.repeat)
                           for name in IMPLEMENTATIONS}
                fast = seconds['extension']
                bandwidth = (f'{megabytes / 1e3 / fast:.1f}' if label == 'fwd'
                             else '—')
                print(f'| {device} | {case} | {label} | {tensors} | '
                      f'{megabytes:.1f} | {fast * 1e3:.2f} | {bandwidth} | '
                      + ' | '.join(f'{seconds[name] * 1e3:.2f}'
                                   for name in others) + ' | '
                      + ' | '.join(f'{seconds[name] / fast:.1f}×'
                                   for name in others) + ' |')


if __name__ == '__main__':
    main()
