r"""``ghnlib train-ghn``."""
import dataclasses
import os
from typing import Annotated

import torch
import torch.distributed as dist
import tyro

from ghnlib.cli.data_options import DataOptions
from ghnlib.cli.signature_options import signature_options
from ghnlib.nn import GraphHyperNetwork
from ghnlib.train import GHNTrainer, GHNTrainingConfig

__all__ = ['TrainGHN', 'GHNOptions']

#: The constructor options of :class:`~ghnlib.GraphHyperNetwork` (the
#: classes come from the dataset).
GHNOptions = signature_options(GraphHyperNetwork, 'GHNOptions',
                               exclude=('num_classes', ))


def _distributed(device: str) -> str:
    """Joins the process group when started by torchrun; returns this
    process's device."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return device
    if device.startswith('cuda'):
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        torch.cuda.set_device(local_rank)
        device = f'cuda:{local_rank}'
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.startswith('cuda')
                                else 'gloo')
    return device


@dataclasses.dataclass
class TrainGHN:
    r"""Train a graph hypernetwork on an image dataset (eq. 2) or, with a
    noise dimension above 0, a Noise GHN (eq. 4). Resumable; runs under
    torchrun for several processes.

    Args:
        out (str): The run's folder.
        data (DataOptions): The images.
        ghn (GHNOptions): The GHN to train (GraphHyperNetwork).
        config (GHNTrainingConfig): How it is trained (GHNTrainingConfig).
        resume (bool): Continue the run in --out.
        device (str): Where to train.
        progress (bool): Progress bars.
    """
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    data: DataOptions = DataOptions()
    ghn: GHNOptions = GHNOptions()
    config: GHNTrainingConfig = dataclasses.field(
        default_factory=GHNTrainingConfig)
    resume: bool = False
    device: str = 'cuda' if torch.cuda.is_available() else 'cpu'
    progress: bool = True

    def run(self) -> int:
        device = _distributed(self.device)
        train_set, val_set = self.data.splits(('train', 'val'))
        torch.manual_seed(self.config.seed)
        ghn = GraphHyperNetwork(num_classes=train_set.num_classes,
                                **dataclasses.asdict(self.ghn))
        command = getattr(self, 'command_line', None)
        if command:
            ghn.meta['command'] = command
        trainer = GHNTrainer(ghn, train_set, val_set, self.config,
                             out_dir=self.out, device=device,
                             progress=self.progress)
        history = trainer.fit(resume=self.resume)
        if trainer.rank == 0 and history:
            last = history[-1]
            print(f"{self.config.val_arch} accuracy at initialisation (no "
                  f"training): {last['val_accuracy']:.4f} after "
                  f"{last['epoch']} epochs; skipped steps: "
                  f"{last['skipped_steps']}; GHN written to "
                  f"{os.path.join(self.out, 'ghn.safetensors')}")
        return 0
