r"""``ghnlib init``."""
import dataclasses
import os
import sys
from typing import Annotated, Optional

import torch
import tyro
from safetensors.torch import save_file

from ghnlib.cli.constructors import Shape
from ghnlib.cli.resolve_model import resolve_model
from ghnlib.nn import GraphHyperNetwork
from ghnlib.nn.graph_hypernetwork import list_pretrained
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['Init']


@dataclasses.dataclass
class Init:
    r"""Predict every parameter of MODEL with a trained GHN and write the
    model state as safetensors.

    Args:
        model (str): Registry name, torchvision name or package.module:attr.
        out (str): Where to write the weights (.safetensors).
        ghn (str): GHN checkpoint (GraphHyperNetwork.save) or the name of a
            GHN shipped with ghnlib (digits, digits-noise).
        noise_seed (int, optional): Seed of the Noise GHN draw
            (reproducible); drawn at random when not given.
        input_shape (Shape, optional): Shape of the example input; 224×224
            for torchvision models, 1,3,32,32 otherwise.
    """
    model: tyro.conf.Positional[Annotated[str, tyro.conf.arg(
        metavar='MODEL')]]
    out: Annotated[str, tyro.conf.arg(metavar='FILE')]
    ghn: Annotated[str, tyro.conf.arg(metavar='CKPT')] = 'digits-noise'
    noise_seed: Optional[int] = None
    input_shape: Optional[Shape] = None

    def run(self) -> int:
        if os.path.exists(self.ghn) or self.ghn not in list_pretrained():
            ghn = GraphHyperNetwork.load(self.ghn)
        else:
            ghn = GraphHyperNetwork.pretrained(self.ghn)
        model, natural_shape = resolve_model(self.model)
        shape = self.input_shape or natural_shape or (1, 3, 32, 32)
        generator = None
        if self.noise_seed is not None:
            generator = torch.Generator().manual_seed(self.noise_seed)
        elif ghn.noise_dim:
            print('no --noise-seed: the noise is drawn at random',
                  file=sys.stderr)
        ghn.init_(model, generator=generator, input_shape=shape)
        state = {k: v.detach().contiguous()
                 for k, v in model.state_dict().items()}
        metadata = {'model': self.model, 'ghn': self.ghn,
                    'noise_seed': str(self.noise_seed)}
        atomic_write(self.out, lambda tmp: save_file(state, tmp,
                                                     metadata=metadata))
        total = sum(p.numel() for p in model.parameters())
        print(f'{self.model}: {total:,} parameters predicted by {self.ghn}, '
              f'written to {self.out}')
        return 0
