r"""Peak resident memory of a fresh process that predicts every parameter
of a batch of CIFAR ResNet-56s with a GHN-2-sized
:class:`~ghnlib.GraphHyperNetwork` (hidden 32, ``max_shape``
(64, 64, 11, 11), 10 classes) under :func:`torch.no_grad`.

Each batch size runs in its own process, which imports only torch and
ghnlib, converts one ResNet-56, prepares the batch (graphs, sweep schedule,
decoding plan) and predicts it three times, dropping the results in
between. Prints a Markdown table:

.. code-block:: bash

    python benchmarks/ghn_peak_memory.py
"""
import argparse
import subprocess
import sys


def status_mb(field):
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field} in /proc/self/status')


def measure(batch_size):
    """Prints, in MB: resident after imports, after preparing the batch,
    peak (``VmHWM``) before predicting, peak at the end, the predicted
    tensors, and the most anonymous memory (``RssAnon``) seen with a
    prediction alive."""
    import torch

    from ghnlib import GraphHyperNetwork
    from ghnlib.models import get_model

    torch.set_grad_enabled(False)
    imported = status_mb('VmRSS')
    torch.manual_seed(0)
    ghn = GraphHyperNetwork(hidden_channels=32, max_shape=(64, 64, 11, 11),
                            num_classes=10)
    graphs = [ghn.graph_of(get_model('resnet56'))] * batch_size
    batch = ghn.prepare(graphs)
    prepared = status_mb('VmRSS')
    before = status_mb('VmHWM')
    anonymous = 0.0
    for _ in range(3):
        out = ghn.predict(batch)
        size = sum(v.numel() * v.element_size() for p in out
                   for v in p.values()) / 2**20
        anonymous = max(anonymous, status_mb('RssAnon'))
        del out
    print(f'{imported:.0f} {prepared:.0f} {before:.0f} '
          f'{status_mb("VmHWM"):.0f} {size:.0f} {anonymous:.0f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch:
        return measure(args.batch)
    print('| batch | after imports | + graphs, schedule, plan | peak while '
          'predicting | peak − before predicting | predicted tensors '
          '| anonymous (allocated) memory with the results alive |')
    print('|---|---|---|---|---|---|---|')
    for batch_size in (8, 64):
        result = subprocess.run(
            [sys.executable, __file__, '--batch', str(batch_size)],
            check=True, capture_output=True, text=True)
        imported, prepared, before, peak, size, anonymous = \
            result.stdout.split()
        print(f'| {batch_size} × resnet56 | {imported} | {prepared} | {peak} '
              f'| {int(peak) - int(before)} | {size} | {anonymous} |')


if __name__ == '__main__':
    sys.exit(main())
