"""ghnlib demo: turn models into the computational graphs a GHN reads.

Converts a CIFAR ResNet-20 from ghnlib's registry and, when torchvision is
installed, a ResNet-50 and a ViT-B/16; prints what each graph holds and how
long conversion took, and draws the ResNet-20 graph as a PNG.

    python examples/demo.py --out out/demo
"""
import argparse
import os
import time

import torch

from ghnlib.graph import draw_graph, to_graph
from ghnlib.models import get_model


def convert(name, model, input_shape):
    start = time.perf_counter()
    graph = to_graph(model, input_shape=input_shape)
    elapsed = (time.perf_counter() - start) * 1e3
    total = sum(p.numel() for p in model.parameters())
    print(f'\n== {name}: input {tuple(input_shape)}, converted in '
          f'{elapsed:.1f} ms')
    print(graph.summary())
    print(f'every parameter placed: {graph.num_params == total} '
          f'({graph.num_params:,} of {total:,})')
    return graph


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='out/demo')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    graph = convert('resnet20 (ghnlib)', get_model('resnet20'), (1, 3, 32, 32))
    png = os.path.join(args.out, 'resnet20_graph.png')
    draw_graph(graph, png)
    graph.save(os.path.join(args.out, 'resnet20_graph.pt'))
    print(f'drawing: {png}')

    try:
        from ghnlib.utils.torchvision import import_torchvision
        torchvision = import_torchvision()
    except ImportError:
        print('\ntorchvision is not installed: skipping its models')
        return
    for name in ('resnet50', 'vit_b_16'):
        with torch.device('meta'):  # structure only: no memory, no init
            model = torchvision.models.get_model(name)
        convert(f'{name} (torchvision)', model, (1, 3, 224, 224))


if __name__ == '__main__':
    main()
