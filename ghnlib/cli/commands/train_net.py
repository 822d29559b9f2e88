r"""``ghnlib train-net``."""
import dataclasses
import json
import os
from typing import Annotated, Optional

import torch
import tyro
from safetensors.torch import save_file

from ghnlib.cli.data_options import DataOptions
from ghnlib.errors import GhnlibError
from ghnlib.init import initialize
from ghnlib.models import get_model_for_input
from ghnlib.train import SGDRecipe, evaluate, train_network
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['TrainNet']


@dataclasses.dataclass
class TrainNet:
    r"""Train a network with the paper's plain recipe (SGD, momentum 0.9,
    weight decay 1e-4, lr 0.1 with step decay, batch 128, no augmentation;
    PCam's recipe for --dataset pcam) from any initialisation, evaluating
    on the validation split along the way.

    Args:
        out (str): The run's folder.
        data (DataOptions): The images.
        recipe (SGDRecipe): The SGD recipe (SGDRecipe).
        arch (str): Registry name of the network.
        init (str): Its initialisation: he, xavier, default, ghn:CKPT,
            noise-ghn:CKPT, vae:DIR, vqvae:DIR or hyperrep:DIR.
        init_seed (int): Seed of the initialisation.
        eval_every (int, optional): Steps between validations; once per
            epoch when not given.
        max_steps (int, optional): Stop after this many steps.
        keep_best (bool): End with the best-validation weights.
        seed (int): Seeds the data order.
        device (str): Where to train.
        progress (bool): Progress bars.
    """
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    data: DataOptions = DataOptions()
    recipe: SGDRecipe = SGDRecipe.cifar10()
    arch: str = 'resnet20'
    init: str = 'he'
    init_seed: int = 0
    eval_every: Optional[int] = None
    max_steps: Optional[int] = None
    keep_best: bool = False
    seed: int = 0
    device: str = 'cuda' if torch.cuda.is_available() else 'cpu'
    progress: bool = True

    def run(self) -> int:
        train_set, val_set, test_set = self.data.splits(
            ('train', 'val', 'test'))
        input_shape = (1, ) + tuple(train_set[0][0].shape)
        try:
            model = get_model_for_input(self.arch, input_shape,
                                        num_classes=train_set.num_classes)
        except KeyError as error:
            raise GhnlibError(str(error)) from None
        generator = torch.Generator().manual_seed(self.init_seed)
        initialize(model, self.init, generator=generator,
                   input_shape=input_shape)
        os.makedirs(self.out, exist_ok=True)
        history = train_network(
            model, train_set, val_set, recipe=self.recipe,
            eval_every=self.eval_every, max_steps=self.max_steps,
            keep_best=self.keep_best, device=self.device, seed=self.seed,
            progress=self.progress,
            log_path=os.path.join(self.out, 'log.jsonl'))
        test = evaluate(model, test_set, device=self.device)
        summary = dict(arch=self.arch, init=self.init,
                       dataset=self.data.dataset,
                       recipe=dataclasses.asdict(self.recipe),
                       test_accuracy=test.accuracy, test_loss=test.loss,
                       **history.to_dict())
        state = {k: v.detach().contiguous().cpu()
                 for k, v in model.state_dict().items()}
        atomic_write(os.path.join(self.out, 'weights.safetensors'),
                     lambda tmp: save_file(state, tmp, metadata={
                         'arch': self.arch, 'init': self.init}))

        def write_summary(tmp: str) -> None:
            with open(tmp, 'w') as file:
                json.dump(summary, file, indent=1)

        atomic_write(os.path.join(self.out, 'history.json'), write_summary)
        print(f'{self.arch} ({self.init}): validation accuracy '
              f'{history.val_accuracy[0]:.4f} at step 0, '
              f'{history.val_accuracy[-1]:.4f} at step {history.steps[-1]} '
              f'(best {history.best_val_accuracy:.4f} at step '
              f'{history.best_step}); test accuracy {test.accuracy:.4f}; '
              f'written to {self.out}')
        return 0
