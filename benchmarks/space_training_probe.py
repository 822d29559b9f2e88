"""Short GHN training runs over (a part of) the architecture space, on
digits 16×16, one thread: the probes of benchmarks/RESULTS.md ("Training
over the architecture space").

    python benchmarks/space_training_probe.py --out out/probe-anchored \
        --archs resnet32,resnet44,resnet56 --space-archs 300 --per-step 4 \
        --families cnn --norms batch --warm digits --epochs 25

Writes the run (log.jsonl, ghn.safetensors) into --out; evaluate the GHN
with benchmarks/ghn_generalisation.py --ghn OUT/ghn.safetensors.
"""
import argparse

import torch

from ghnlib import GraphHyperNetwork
from ghnlib.archspace import FAMILIES, NORMS
from ghnlib.data import get_splits
from ghnlib.train import GHNTrainer, GHNTrainingConfig
from ghnlib.train import ghn_trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True)
    parser.add_argument('--archs', default='')
    parser.add_argument('--space-archs', type=int, default=300)
    parser.add_argument('--per-step', type=int, default=4)
    parser.add_argument('--families', default=','.join(FAMILIES))
    parser.add_argument('--norms', default=','.join(NORMS))
    parser.add_argument('--scale-outputs', action='store_true')
    parser.add_argument('--logit-scale', type=float, default=None)
    parser.add_argument('--warm', default=None,
                        help='start from this shipped GHN or file')
    parser.add_argument('--epochs', type=int, default=25)
    parser.add_argument('--lr', type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    families = tuple(args.families.split(','))
    norms = tuple(args.norms.split(','))
    space = ghn_trainer.ArchSpace
    # The trainer builds its space from the config; the probe narrows the
    # families and norms it draws from.
    ghn_trainer.ArchSpace = lambda **kw: space(families=families,
                                               norms=norms, **kw)
    train, val = get_splits('digits', image_size=16)
    torch.manual_seed(0)
    if args.warm is None:
        ghn = GraphHyperNetwork()
    elif args.warm.endswith('.safetensors'):
        ghn = GraphHyperNetwork.load(args.warm)
    else:
        ghn = GraphHyperNetwork.pretrained(args.warm)
    config = GHNTrainingConfig(
        archs=tuple(a for a in args.archs.split(',') if a),
        space_archs=args.space_archs, archs_per_step=args.per_step,
        epochs=args.epochs, milestones=(10**6, ), lr=args.lr,
        scale_outputs=args.scale_outputs, logit_scale=args.logit_scale)
    for entry in GHNTrainer(ghn, train, val, config, out_dir=args.out,
                            progress=False).fit():
        print(entry['epoch'], round(entry['train_accuracy'], 3),
              round(entry['val_accuracy'], 3))


if __name__ == '__main__':
    main()
