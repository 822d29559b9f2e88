r"""``ghnlib zoo``."""
import dataclasses
from typing import Annotated, Optional

import torch
import tyro

from ghnlib.cli.constructors import SeedList
from ghnlib.cli.data_options import DataOptions
from ghnlib.train import SGDRecipe
from ghnlib.zoo import build_zoo

__all__ = ['Zoo']


@dataclasses.dataclass
class Zoo:
    r"""Train N copies of an architecture with different seeds with the
    plain recipe, keeping each run's best-validation weights. Resumable:
    members already in --out are not trained again.

    Args:
        out (str): The zoo's folder.
        data (DataOptions): The images.
        recipe (SGDRecipe): The SGD recipe of every member (SGDRecipe).
        arch (str): Registry name of the members' architecture.
        n (int): Members.
        first_seed (int): Members use seeds first-seed … first-seed+n-1.
        seeds (SeedList, optional): The members' seeds instead, e.g.
            0-9,20,31 (overrides --n and --first-seed).
        init (str): Initialisation of every member.
        keep_epochs (bool): Also keep the weights at every evaluation (for
            train-hyperrep).
        eval_every (int, optional): Steps between validations; once per
            epoch when not given.
        max_steps (int, optional): Stop each run after this many steps.
        device (str): Where to train.
        progress (bool): Progress bars.
    """
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    data: DataOptions = DataOptions()
    recipe: SGDRecipe = SGDRecipe.cifar10()
    arch: str = 'resnet20'
    n: int = 100
    first_seed: Annotated[int, tyro.conf.arg(aliases=('--seed', ))] = 0
    seeds: Optional[SeedList] = None
    init: str = 'he'
    keep_epochs: bool = False
    eval_every: Optional[int] = None
    max_steps: Optional[int] = None
    device: str = 'cuda' if torch.cuda.is_available() else 'cpu'
    progress: bool = True

    def run(self) -> int:
        train_set, val_set, test_set = self.data.splits(
            ('train', 'val', 'test'))
        seeds = (self.seeds if self.seeds is not None else
                 range(self.first_seed, self.first_seed + self.n))
        members = build_zoo(
            self.arch, train_set, val_set, self.out, seeds=seeds,
            recipe=self.recipe, init=self.init, eval_every=self.eval_every,
            max_steps=self.max_steps, dataset=self.data.dataset,
            device=self.device, progress=self.progress, test_set=test_set,
            keep_epochs=self.keep_epochs)
        accuracy = torch.tensor([m.val_accuracy for m in members])
        spread = (f' ± {accuracy.std():.4f} (min {accuracy.min():.4f}, '
                  f'max {accuracy.max():.4f})' if len(members) > 1 else '')
        print(f'{len(members)} {self.arch} in {self.out}: best validation '
              f'accuracy {accuracy.mean():.4f}{spread}')
        return 0
