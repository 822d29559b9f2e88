"""Compare initialisations of a ResNet-20 on the bundled digits: validation
accuracy at initialisation and after training, over several seeds.

    python examples/compare_inits.py \\
        --inits he,vae:out/local/vae,vqvae:out/local/vqvae,ghn:digits,noise-ghn:digits-noise \\
        --seeds 5 --epochs 1

``ghn:NAME`` / ``noise-ghn:NAME`` also take the name of a GHN shipped with
ghnlib. Every run uses the paper's plain recipe (SGD, momentum 0.9, weight
decay 1e-4, lr 0.1, batch 128, no augmentation); the step-0 accuracy is
measured after recomputing batch-norm statistics on four training batches
(no weight changes). Prints one Markdown table.
"""
import argparse
import os
import statistics
import time

import torch

from ghnlib.data import load_digits
from ghnlib.models import get_model
from ghnlib.nn.graph_hypernetwork import PRETRAINED_DIR, list_pretrained
from ghnlib.init import initialize
from ghnlib.train import SGDRecipe, train_network


def resolve(spec):
    """Lets ghn:/noise-ghn: name a shipped GHN."""
    name, _, argument = spec.partition(':')
    if name in ('ghn', 'noise-ghn') and argument in list_pretrained():
        return f'{name}:{os.path.join(PRETRAINED_DIR, argument)}.safetensors'
    return spec


def summary(values):
    mean = statistics.mean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.3f} ± {spread:.3f}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--inits', default='he,xavier,ghn:digits,'
                        'noise-ghn:digits-noise')
    parser.add_argument('--arch', default='resnet20')
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--epochs', type=int, default=1)
    args = parser.parse_args()

    train = load_digits(image_size=args.image_size, channels=3, split='train')
    val = load_digits(image_size=args.image_size, channels=3, split='val')
    shape = (1, 3, args.image_size, args.image_size)
    recipe = SGDRecipe(epochs=args.epochs, milestones=(), factors=())
    print(f'{args.arch} on digits ({args.image_size}×{args.image_size}), '
          f'{args.seeds} seeds, {args.epochs} epoch(s) of the plain recipe; '
          'validation accuracy mean ± std\n')
    print(f'| init | step 0 | after {args.epochs} epoch(s) | seconds |')
    print('|---|---|---|---|')
    for spec in args.inits.split(','):
        start = time.perf_counter()
        at_init, trained = [], []
        for seed in range(args.seeds):
            model = initialize(get_model(args.arch), resolve(spec),
                               generator=torch.Generator().manual_seed(seed),
                               input_shape=shape)
            history = train_network(model, train, val, recipe=recipe,
                                    seed=seed, progress=False)
            at_init.append(history.val_accuracy[0])
            trained.append(history.val_accuracy[-1])
        print(f'| {spec} | {summary(at_init)} | {summary(trained)} | '
              f'{time.perf_counter() - start:.0f} |')


if __name__ == '__main__':
    main()
