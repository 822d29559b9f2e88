r"""The subcommands of ``ghnlib``: one dataclass each, whose fields are its
flags and whose :meth:`run` does the work."""
from ghnlib.cli.commands.convert import Convert
from ghnlib.cli.commands.experiment import Experiment
from ghnlib.cli.commands.init import Init
from ghnlib.cli.commands.train_ghn import GHNOptions, TrainGHN
from ghnlib.cli.commands.train_hyperrep import HyperrepOptions, TrainHyperrep
from ghnlib.cli.commands.train_local import LocalOptions, TrainLocal
from ghnlib.cli.commands.train_net import TrainNet
from ghnlib.cli.commands.zoo import Zoo

__all__ = [
    'Convert',
    'Init',
    'TrainGHN',
    'TrainNet',
    'Zoo',
    'TrainLocal',
    'TrainHyperrep',
    'Experiment',
    'GHNOptions',
    'LocalOptions',
    'HyperrepOptions',
]
