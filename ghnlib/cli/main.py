r"""Parsing and running ``ghnlib`` commands."""
import argparse
import shlex
import sys
from typing import Annotated, Any, Dict, Optional, Sequence, Union

import tyro

from ghnlib.cli.commands import (Convert, Experiment, Init, TrainGHN,
                                 TrainHyperrep, TrainLocal, TrainNet, Zoo)
from ghnlib.cli.constructors import CONSTRUCTORS
from ghnlib.errors import GhnlibError
from ghnlib.experiments import ExperimentConfig
from ghnlib.train import SGDRecipe

__all__ = ['COMMANDS', 'parse', 'main']

#: The subcommands by name.
COMMANDS: Dict[str, type] = {
    'convert': Convert,
    'init': Init,
    'train-ghn': TrainGHN,
    'train-net': TrainNet,
    'zoo': Zoo,
    'train-local': TrainLocal,
    'train-hyperrep': TrainHyperrep,
    'experiment': Experiment,
}


def _preset(name: Optional[str], argv: Sequence[str]) -> Any:
    """The defaults of the command that other flags choose (:obj:`None` if
    they are the fields' own): ``experiment --quick`` starts from
    :meth:`ExperimentConfig.quick`, and ``train-net`` / ``zoo`` on
    ``--dataset pcam`` from :meth:`SGDRecipe.pcam`. Given flags override
    these defaults as any other."""
    flags = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    flags.add_argument('--quick', action=argparse.BooleanOptionalAction,
                       default=False)
    flags.add_argument('--dataset')
    given, _ = flags.parse_known_args(argv)
    if name == 'experiment' and given.quick:
        return Experiment(out=tyro.MISSING, config=ExperimentConfig.quick())
    if name in ('train-net', 'zoo') and given.dataset == 'pcam':
        return COMMANDS[name](out=tyro.MISSING, recipe=SGDRecipe.pcam())
    return None


def parse(argv: Optional[Sequence[str]] = None) -> Any:
    r"""Parses a ``ghnlib`` command line into its command (one of
    :obj:`COMMANDS`, with every config built), without running it.

    Args:
        argv (Sequence[str], optional): The arguments after ``ghnlib``.
            (default: :obj:`sys.argv[1:]`)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv else None
    preset = _preset(name, argv[1:])
    choices = []
    for command, cls in COMMANDS.items():
        default = (preset if command == name and preset is not None else
                   tyro.MISSING_NONPROP)
        choices.append(Annotated[cls, tyro.conf.subcommand(
            command, default=default)])
    return tyro.cli(
        Union[tuple(choices)], args=argv, prog='ghnlib',
        description='Initialise neural networks with generative models.',
        registry=CONSTRUCTORS,
        config=(tyro.conf.OmitArgPrefixes, ))


def main(argv: Optional[Sequence[str]] = None) -> int:
    r"""Runs a ``ghnlib`` command line; returns the exit status (2 with a
    message on standard error when the library refuses an input).

    Args:
        argv (Sequence[str], optional): The arguments after ``ghnlib``.
            (default: :obj:`sys.argv[1:]`)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f'ghnlib {argv[0]}' if argv else 'ghnlib'
    try:
        command = parse(argv)
        # What ran, for the files a command writes (a GHN's meta).
        command.command_line = shlex.join(['ghnlib', *argv])
        return command.run()
    except GhnlibError as error:
        print(f'{prog}: error: {error}', file=sys.stderr)
        return 2
