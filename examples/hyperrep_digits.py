"""Hyper-representations on digits: a zoo of small CNNs, a weight-space
autoencoder over it, and the accuracy of networks sampled from it (S_KDE30)
against random initialisation (B_T) and a KDE on the raw zoo weights
(B_KDE30), at initialisation and after one epoch of fine-tuning.

    OMP_NUM_THREADS=1 python examples/hyperrep_digits.py --out out/hyperrep

Every stage resumes: the zoo keeps its finished members, a fitted
hyper-representation is reused (--refit trains it again). It prints one
Markdown table and writes it, with the raw numbers, to OUT/results.json.
"""
import argparse
import json
import os
import statistics
import time

import torch

from ghnlib.data import load_digits
from ghnlib.hyperrep import (HyperRepresentation, load_zoo_weights,
                             sample_raw_weights)
from ghnlib.models import get_model
from ghnlib.init import initialize
from ghnlib.train import SGDRecipe, evaluate, train_network
from ghnlib.zoo import build_zoo

IMAGE_SIZE = 28
INPUT_SHAPE = (1, 1, IMAGE_SIZE, IMAGE_SIZE)
ARCH = 'small_cnn'
#: Recipe of the zoo and of the fine-tuning: plain SGD, constant rate.
RECIPE = SGDRecipe(lr=0.01, momentum=0.9, weight_decay=0.0, batch_size=32,
                   epochs=10, milestones=(), factors=())
#: Seeds of the baseline networks and of the fine-tuning runs, apart from the
#: zoo's 0..members-1.
EVAL_SEED = 100_000


def digits():
    return tuple(load_digits(image_size=IMAGE_SIZE, channels=1, split=split)
                 for split in ('train', 'val', 'test'))


def make_zoo(args, train, val, test):
    start = time.perf_counter()
    members = build_zoo(ARCH, train, val, os.path.join(args.out, 'zoo'),
                        seeds=range(args.members),
                        recipe=RECIPE.replace(epochs=args.zoo_epochs),
                        init='default', dataset='digits', test_set=test,
                        keep_epochs=True, progress=False)
    return members, time.perf_counter() - start


def fit(args):
    directory = os.path.join(args.out, 'hyperrep')
    if not args.refit and os.path.exists(os.path.join(directory,
                                                      'hyperrep.safetensors')):
        return HyperRepresentation.load(directory)
    hyper = HyperRepresentation.fit(
        os.path.join(args.out, 'zoo'), ARCH, epochs=args.hr_epochs,
        batch_size=args.batch_size, lr=args.lr, noise=args.noise,
        contrast_weight=args.contrast_weight,
        model_options=dict(d_model=args.d_model, latent_dim=args.latent_dim),
        seed=0, progress=args.progress)
    hyper.save(directory)
    return hyper


def accuracies(states, train, val, test, finetune_epochs):
    """Test accuracy of each weight set at epoch 0 and after fine-tuning."""
    at_init, tuned = [], []
    for index, state in enumerate(states):
        model = get_model(ARCH)
        model.load_state_dict(state)
        at_init.append(evaluate(model, test).accuracy)
        train_network(model, train, val, seed=EVAL_SEED + index,
                      recipe=RECIPE.replace(epochs=finetune_epochs),
                      progress=False)
        tuned.append(evaluate(model, test).accuracy)
    return at_init, tuned


def random_states(n):
    states = []
    for index in range(n):
        model = initialize(get_model(ARCH), 'default', input_shape=INPUT_SHAPE,
                           generator=torch.Generator().manual_seed(
                               EVAL_SEED + index))
        states.append(model.state_dict())
    return states


def cell(values):
    values = [100 * v for v in values]
    return f'{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='out/hyperrep')
    parser.add_argument('--members', type=int, default=300)
    parser.add_argument('--zoo-epochs', type=int, default=10)
    parser.add_argument('--hr-epochs', type=int, default=40)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--noise', type=float, default=0.0)
    parser.add_argument('--contrast-weight', type=float, default=0.0)
    parser.add_argument('--d-model', type=int, default=64)
    parser.add_argument('--latent-dim', type=int, default=32)
    parser.add_argument('--samples', type=int, default=20,
                        help='networks per method')
    parser.add_argument('--refit', action='store_true')
    parser.add_argument('--stage', choices=('zoo', 'fit', 'all'),
                        default='all')
    parser.add_argument('--progress', action='store_true')
    args = parser.parse_args()
    torch.set_num_threads(1)

    train, val, test = digits()
    members, zoo_seconds = make_zoo(args, train, val, test)
    print(f'zoo: {len(members)} {ARCH} x {args.zoo_epochs} epochs '
          f'({zoo_seconds:.0f} s this run); test accuracy of the '
          'best-validation weights '
          f'{cell([m.test_accuracy for m in members])} %', flush=True)
    if args.stage == 'zoo':
        return
    start = time.perf_counter()
    hyper = fit(args)
    history = hyper.history
    print(f'hyper-representation: {history["checkpoints"]} checkpoints of '
          f'{history["members"]} members, reconstruction loss '
          f'{history["loss"][0]:.3f} -> {history["loss"][-1]:.3f} (held-out '
          f'members {history["val_loss"][-1]:.3f}), fit in '
          f'{history["seconds"]:.0f} s ({time.perf_counter() - start:.0f} s '
          'this run)', flush=True)
    if args.stage == 'fit':
        return

    zoo = load_zoo_weights(os.path.join(args.out, 'zoo'), ARCH)
    n = args.samples
    # One KDE for both spaces: joint, per-coordinate Scott bandwidths (the
    # defaults); the dimension-wise rows are the authors' variant.
    methods = {
        'B_T (random, PyTorch default init)': lambda: random_states(n),
        'B_KDE30 (raw weights)': lambda: sample_raw_weights(
            zoo.states, zoo.accuracy, n, top_fraction=0.3,
            generator=torch.Generator().manual_seed(1)),
        'B_KDE30 (raw weights, dimension-wise)': lambda: sample_raw_weights(
            zoo.states, zoo.accuracy, n, top_fraction=0.3,
            dimensionwise=True, generator=torch.Generator().manual_seed(1)),
        'S_KDE (latents, all checkpoints)': lambda: hyper.sample(
            n, torch.Generator().manual_seed(2), top_fraction=1.0),
        'S_KDE30 (latents)': lambda: hyper.sample(
            n, torch.Generator().manual_seed(2), top_fraction=0.3),
        'S_KDE30 (latents, dimension-wise)': lambda: hyper.sample(
            n, torch.Generator().manual_seed(2), top_fraction=0.3,
            dimensionwise=True),
    }
    rows, raw = [], {}
    for name, draw in methods.items():
        start = time.perf_counter()
        at_init, tuned = accuracies(draw(), train, val, test, 1)
        raw[name] = dict(epoch0=at_init, epoch1=tuned,
                         seconds=time.perf_counter() - start)
        rows.append(f'| {name} | {cell(at_init)} | {cell(tuned)} |')
        print(f'{name}: done in {raw[name]["seconds"]:.0f} s', flush=True)
    table = '\n'.join([
        f'Test accuracy (%) of small_cnn on digits {IMAGE_SIZE}x{IMAGE_SIZE}, '
        f'mean ± std over {n} sampled networks; fine-tuning: SGD lr '
        f'{RECIPE.lr}, momentum {RECIPE.momentum}, batch {RECIPE.batch_size}.',
        '',
        '| Method | Ep. 0 | Ep. 1 |',
        '|---|---|---|',
        *rows])
    print(table)
    with open(os.path.join(args.out, 'results.json'), 'w') as handle:
        json.dump(dict(table=table, results=raw, members=len(members),
                       zoo_epochs=args.zoo_epochs,
                       hyperrep=dict(history)), handle, indent=1)


if __name__ == '__main__':
    main()
