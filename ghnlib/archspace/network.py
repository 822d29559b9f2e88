r"""A network of the architecture space, built from its recipe."""
from typing import Mapping, Union

import torch
import torch.nn as nn

from ghnlib.archspace.blocks import (ClassifierHead, ConvStage, TokenStage,
                                     conv_stem)
from ghnlib.archspace.spec import ArchRecipe
from ghnlib.errors import GhnlibError

__all__ = ['RandomNet', 'build', 'count_parameters']


class RandomNet(nn.Module):
    r"""A network of the architecture space: a convolutional stem and
    stages of cells, and / or patch tokens with transformer or mixer
    blocks, then a classifier head, exactly as its
    :class:`~ghnlib.archspace.ArchRecipe` says.

    Args:
        recipe (ArchRecipe): The recipe.

    Attributes:
        recipe (ArchRecipe): The recipe.
        name (str): The recipe's name.

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`, with :math:`H, W` the
          recipe's :obj:`input_size` (a CNN takes any size)
        - **output:** :math:`(N, \mathrm{classes})`
    """
    def __init__(self, recipe: ArchRecipe):
        super().__init__()
        self.recipe = recipe
        self.name = recipe.name
        norm, act = recipe.norm, recipe.act
        channels = recipe.in_channels
        if recipe.stem is not None:
            self.stem = conv_stem(recipe.stem, channels, norm, act)
            channels = recipe.stem.width
        else:
            self.stem = nn.Identity()
        stages = []
        for stage in recipe.stages:
            stages.append(ConvStage(stage, channels, norm, act))
            channels = stage.width
        self.stages = nn.Sequential(*stages)
        if recipe.tokens is not None:
            self.tokens = TokenStage(recipe.tokens, channels,
                                     recipe.num_tokens, act)
            channels = recipe.tokens.width
        else:
            self.tokens = nn.Identity()
        self.head = ClassifierHead(recipe.head, channels, recipe.num_classes,
                                   act, tokens=recipe.tokens is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(self.stages(self.stem(x))))

    def extra_repr(self) -> str:
        return f'name={self.name!r}'


def build(recipe: Union[ArchRecipe, Mapping, str]) -> RandomNet:
    r"""Builds the network of a recipe: the same module structure and
    parameter shapes every time (parameters get PyTorch's default random
    initialisation; build under ``torch.device('meta')`` for the structure
    alone).

    Args:
        recipe (ArchRecipe or Mapping or str): The recipe, or its
            :meth:`~ghnlib.archspace.ArchRecipe.to_dict` /
            :meth:`~ghnlib.archspace.ArchRecipe.to_json` form.

    Returns:
        :class:`RandomNet`
    """
    if isinstance(recipe, str):
        recipe = ArchRecipe.from_json(recipe)
    elif isinstance(recipe, Mapping):
        recipe = ArchRecipe.from_dict(recipe)
    elif not isinstance(recipe, ArchRecipe):
        raise GhnlibError(f'build: expected an ArchRecipe, a dict or JSON '
                          f'text, got {type(recipe).__name__}')
    return RandomNet(recipe)


def count_parameters(recipe: ArchRecipe) -> int:
    """The number of parameters of :obj:`recipe`'s network, counted on the
    ``meta`` device (nothing is allocated or initialised)."""
    with torch.device('meta'):
        model = RandomNet(recipe)
    return sum(p.numel() for p in model.parameters())
