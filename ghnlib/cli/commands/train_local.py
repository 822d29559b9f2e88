r"""``ghnlib train-local``."""
import dataclasses
from typing import Annotated, Literal

import tyro

from ghnlib.cli.signature_options import signature_options
from ghnlib.local import LocalInitializer

__all__ = ['TrainLocal', 'LocalOptions']

#: The options of :meth:`~ghnlib.local.LocalInitializer.fit` that are not
#: the command's own.
LocalOptions = signature_options(
    LocalInitializer.fit, 'LocalOptions',
    exclude=('zoo_dir', 'arch', 'kind', 'model_options', 'input_shape',
             'progress'))


@dataclasses.dataclass
class TrainLocal:
    r"""Build the weight datasets (k×k kernel slices of every conv layer,
    lowest 5% by l2 dropped) of a zoo and fit one VAE or VQ-VAE (with its
    autoregressive code prior) per layer.

    Args:
        zoo (str): The zoo's folder (ghnlib zoo).
        out (str): Where the layer models go.
        arch (str): The zoo's architecture.
        kind (str): vae or vqvae.
        fit (LocalOptions): How the layer models are fit
            (LocalInitializer.fit).
        image_size (int): Input size for finding the conv layers.
        progress (bool): Progress bars.
    """
    zoo: tyro.conf.Positional[Annotated[str, tyro.conf.arg(
        metavar='ZOO')]]
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    arch: str = 'resnet20'
    kind: Literal['vae', 'vqvae'] = 'vae'
    fit: LocalOptions = LocalOptions()
    image_size: int = 16
    progress: bool = True

    def run(self) -> int:
        shape = (1, 3, self.image_size, self.image_size)
        local = LocalInitializer.fit(
            self.zoo, self.arch, self.kind, input_shape=shape,
            progress=self.progress, **dataclasses.asdict(self.fit))
        local.save(self.out)
        print(f'{local}: {len(local.layers)} layer models written to '
              f'{self.out}' + (f'; without a model: {sorted(local.skipped)}'
                               if local.skipped else ''))
        return 0
