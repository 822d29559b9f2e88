"""Accuracy at initialisation (and after one epoch of fine-tuning) of GHN,
Noise GHN and He initialisation on architectures never trained on: the test
splits of ghnlib.archspace and real torchvision models, on digits.

    python benchmarks/ghn_generalisation.py --ghn digits-space \
        --noise-ghn digits-space-noise --per-split 8 --out out/generalisation

Prints one Markdown table (per split and initialisation) and writes
results.json (every row) and generalisation.png into --out.
"""
import argparse
import copy
import dataclasses
import functools
import json
import os

import torch

from ghnlib import GraphHyperNetwork
from ghnlib.archspace import ArchSpace, build
from ghnlib.archspace.real_models import real_models
from ghnlib.archspace.splits import SPLITS, split_recipes
from ghnlib.data import get_splits
from ghnlib.experiments.generalisation import (evaluate_generalisation,
                                               summarise)
from ghnlib.init import initialize
from ghnlib.models import get_model_for_input
from torchvision_models import import_torchvision


def load_ghn(name):
    if os.path.exists(name):
        return GraphHyperNetwork.load(name).eval()
    return GraphHyperNetwork.pretrained(name).eval()


def ghn_init(ghn, noise, input_shape):
    def init(model, generator):
        if noise:
            return ghn.init_(model, generator=generator,
                             input_shape=input_shape)
        zeros = torch.zeros(ghn.noise_dim) if ghn.noise_dim else None
        return ghn.init_(model, zeros, input_shape=input_shape)
    return init


def he(model, generator):
    return initialize(model, 'he', generator=generator)


def architectures(args, input_shape, space):
    archs = [('resnet', name, functools.partial(get_model_for_input, name,
                                                 input_shape))
             for name in ('resnet20', 'resnet110')]
    for split in args.splits:
        for recipe in split_recipes(split, args.per_split, space=space):
            archs.append((split, recipe.name, functools.partial(build, recipe)))
    if args.real:
        import_torchvision()
        for named in real_models(input_shape[1:]):
            archs.append(('real', named.name,
                          functools.partial(copy.deepcopy, named.model)))
    return archs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ghn', default='digits-space')
    parser.add_argument('--noise-ghn', default='digits-space-noise')
    parser.add_argument('--per-split', type=int, default=8)
    parser.add_argument('--splits', default=','.join(SPLITS))
    parser.add_argument('--no-real', dest='real', action='store_false')
    parser.add_argument('--no-fine-tune', dest='fine_tune',
                        action='store_false')
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--scale', action='store_true',
                        help='scale the GHNs\' weight layers to unit output '
                        'on a training batch before measuring')
    parser.add_argument('--no-he', dest='he', action='store_false')
    parser.add_argument('--out', default='out/generalisation')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    args.splits = [s for s in args.splits.split(',') if s]
    torch.set_num_threads(args.threads)

    train_set, test_set = get_splits('digits', ('train', 'test'),
                                     image_size=args.image_size)
    input_shape = (1, ) + tuple(train_set[0][0].shape)
    ghn = load_ghn(args.ghn)
    meta = getattr(ghn, 'meta', {})
    space = ArchSpace(**meta['space']) if meta.get('space') else \
        ArchSpace(input_size=args.image_size, width=(16, 48), depth=(2, 6),
                  max_params=250_000)
    inits = {'GHN': (ghn_init(ghn, False, input_shape), args.scale)}
    if args.noise_ghn:
        noise_ghn = load_ghn(args.noise_ghn)
        inits['Noise GHN'] = (ghn_init(noise_ghn, True, input_shape),
                              args.scale)
    if args.he:
        inits['He'] = (he, False)
    results = evaluate_generalisation(
        architectures(args, input_shape, space), inits, train_set, test_set,
        fine_tune=args.fine_tune, progress=print)
    rows = summarise(results)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'results.json'), 'w') as handle:
        json.dump({'rows': [dataclasses.asdict(r) for r in results],
                   'summary': rows}, handle, indent=1)

    print('\n| split | init | archs | mean at init | median at init | '
          '> 30 % at init | mean after 1 epoch | diverged |')
    print('|---|---|---|---|---|---|---|---|')
    for row in rows:
        tuned = ('–' if row['mean_fine_tuned'] is None
                 else f"{row['mean_fine_tuned']:.3f}")
        print(f"| {row['split']} | {row['init']} | {row['archs']} | "
              f"{row['mean_at_init']:.3f} | {row['median_at_init']:.3f} | "
              f"{row['above_threshold']:.2f} | {tuned} | {row['diverged']} |")
    ood = [r for r in results if r.split not in ('id', 'resnet')]
    for init in inits:
        values = sorted(r.accuracy_at_init for r in ood if r.init == init)
        if values:
            median = values[len(values) // 2] if len(values) % 2 else \
                sum(values[len(values) // 2 - 1:len(values) // 2 + 1]) / 2
            above = sum(v > 0.3 for v in values) / len(values)
            print(f'{init}: out-of-distribution splits and real models, '
                  f'{len(values)} architectures: median {median:.3f}, '
                  f'{above:.0%} above 0.3')
    plot(results, list(inits), os.path.join(args.out, 'generalisation.png'))


def plot(results, inits, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(r.split for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    width = 0.8 / len(inits)
    for panel, (key, title) in enumerate(
            (('accuracy_at_init', 'at initialisation'),
             ('accuracy_fine_tuned', 'after one epoch'))):
        ax = axes[panel]
        for k, init in enumerate(inits):
            values = []
            for split in splits:
                got = [getattr(r, key) for r in results
                       if r.split == split and r.init == init
                       and getattr(r, key) is not None]
                values.append(sum(got) / len(got) if got else 0.0)
            ax.bar([i + k * width for i in range(len(splits))], values,
                   width, label=init)
        ax.set_xticks([i + width * (len(inits) - 1) / 2
                       for i in range(len(splits))], splits, rotation=30)
        ax.set_title(f'digits test accuracy, {title}')
        ax.axhline(0.1, color='grey', lw=0.8, ls=':')
    axes[0].set_ylabel('mean accuracy')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == '__main__':
    main()
