r"""The ``ghnlib`` command, generated from the config dataclasses.

.. code-block:: text

    ghnlib convert MODEL [--input-shape 1,3,32,32] [--png graph.png]
                         [--save graph.pt] [--ve-cutoff 50] [--no-strict]
    ghnlib convert --onnx model.onnx [--png graph.png] [--save graph.pt]
    ghnlib init MODEL [--ghn CKPT|NAME] [--noise-seed S] --out weights.safetensors
    ghnlib train-ghn --dataset digits --archs resnet32,resnet44,resnet56
                     [--noise-dim 8] [--epochs 30] --out DIR [--resume]
    ghnlib train-net --arch resnet20 --init noise-ghn:DIR/ghn.safetensors
                     --dataset digits [--epochs N] --out DIR
    ghnlib zoo --arch resnet20 --dataset digits --n 100 [--first-seed 0]
               [--epochs N] --out ZOO
    ghnlib train-local ZOO --arch resnet20 --kind vae|vqvae --out DIR
    ghnlib train-hyperrep ZOO --out DIR
    ghnlib experiment --dataset digits --inits he,xavier,vae,vqvae,ghn,noise-ghn
                      [--members 25] [--quick] --out DIR

Each command is a dataclass (:mod:`ghnlib.cli.commands`) whose fields hold
its own arguments and the configs it runs with:
:class:`~ghnlib.experiments.ExperimentConfig`,
:class:`~ghnlib.train.GHNTrainingConfig`, :class:`~ghnlib.train.SGDRecipe`,
and the options of :class:`~ghnlib.GraphHyperNetwork`,
:meth:`~ghnlib.local.LocalInitializer.fit` and
:func:`~ghnlib.hyperrep.train_hyperrep`. Every field is a flag named after
it (``--calibration-batches``), documented in ``--help`` from the class
docstring with its default. ``ghnlib COMMAND --help`` lists them all.

The parser is built by `tyro <https://brentyi.github.io/tyro/>`_, chosen
because it generates kebab-case flags, subcommands and positionals from
dataclasses, reads the help from Google-style ``Args:`` docstrings, and has
a public registry for custom value parsing and aliases
(:mod:`ghnlib.cli.constructors`), where the argparse-based generators
either name flags with underscores (jsonargparse) or do not parse
``Sequence[int]`` fields (simple-parsing).

``MODEL`` is a ghnlib registry name (``resnet20``), a torchvision model name
(``resnet50``) or ``package.module:attr`` naming an ``nn.Module`` instance, a
module class or a builder function (called without arguments).
"""
from ghnlib.cli.main import COMMANDS, main, parse
from ghnlib.cli.resolve_model import resolve_model

__all__ = ['main', 'parse', 'COMMANDS', 'resolve_model']
