r"""``ghnlib train-hyperrep``."""
import dataclasses
from typing import Annotated

import tyro

from ghnlib.cli.signature_options import signature_options
from ghnlib.hyperrep import train_hyperrep

__all__ = ['TrainHyperrep', 'HyperrepOptions']

#: The options of :func:`~ghnlib.hyperrep.train_hyperrep`.
HyperrepOptions = signature_options(
    train_hyperrep, 'HyperrepOptions',
    exclude=('zoo_dir', 'out_dir', 'progress'))


@dataclasses.dataclass
class TrainHyperrep:
    r"""Fit a transformer autoencoder over the neuron tokens of a zoo kept
    with --keep-epochs; new weights are sampled with a KDE in its latent
    space (--init hyperrep:DIR).

    Args:
        zoo (str): The zoo's folder (ghnlib zoo --keep-epochs).
        out (str): Where the hyper-representation goes.
        fit (HyperrepOptions): How it is fit (train_hyperrep).
        progress (bool): Progress bars.
    """
    zoo: tyro.conf.Positional[Annotated[str, tyro.conf.arg(
        metavar='ZOO')]]
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    fit: HyperrepOptions = HyperrepOptions()
    progress: bool = True

    def run(self) -> int:
        hyperrep = train_hyperrep(self.zoo, self.out, progress=self.progress,
                                  **dataclasses.asdict(self.fit))
        print(f'{hyperrep}: written to {self.out}')
        return 0
