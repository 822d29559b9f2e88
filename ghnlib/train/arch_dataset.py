r"""Training architectures with their graphs, converted once and cached on
disk."""
import hashlib
import json
import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from tqdm.auto import tqdm
from torch import nn

from ghnlib.archspace import ARCHSPACE_VERSION, ArchRecipe, build
from ghnlib.errors import GhnlibError
from ghnlib.graph import ArchGraph, to_graph
from ghnlib.graph.to_graph import DEFAULT_VE_CUTOFF
from ghnlib.graph.vocabulary import VOCABULARY_VERSION
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['ArchDataset']

_FORMAT = 'ghnlib.ArchDataset'
_FORMAT_VERSION = 1


class ArchDataset:
    r"""Architectures of the space (:mod:`ghnlib.archspace`) and their
    graphs, so that a training step draws a meta-batch of distinct
    architectures without tracing any of them.

    The graphs are converted on first use and written, all in one file, to
    :obj:`cache_dir` (:func:`torch.save` of tensors, strings and lists only,
    read back with :obj:`weights_only=True`: nothing is unpickled); the file
    name is a digest of the recipes, the input shape, the virtual-edge
    cutoff and the versions of the op vocabulary and the space, so a cache
    is never used for anything else. Networks are rebuilt from their
    recipes when asked for (:meth:`model`): their parameters are never used,
    only their structure and buffers.

    .. code-block:: python

        recipes = ArchSpace(input_size=16).sample_recipes(1000, seed=0)
        archs = ArchDataset(recipes, 'out/graphs', input_shape=(1, 3, 16, 16))
        model, graph = archs[7]

    Args:
        recipes (Sequence[ArchRecipe]): The architectures.
        cache_dir (str or os.PathLike, optional): Where the graphs are
            cached; :obj:`None` keeps them in memory only.
            (default: :obj:`None`)
        input_shape (Tuple[int, ...]): The example input of the conversion,
            :math:`(1, C, H, W)`.
        ve_cutoff (int, optional): Longest virtual edge.
            (default: :obj:`ghnlib.graph.to_graph.DEFAULT_VE_CUTOFF`)
        progress (bool, optional): A progress bar while converting.
            (default: :obj:`False`)
    """
    def __init__(self, recipes: Sequence[ArchRecipe],
                 cache_dir: Union[str, os.PathLike, None] = None, *,
                 input_shape: Sequence[int],
                 ve_cutoff: int = DEFAULT_VE_CUTOFF, progress: bool = False):
        recipes = list(recipes)
        if not recipes:
            raise GhnlibError('ArchDataset needs at least one recipe')
        wrong = [type(r).__name__ for r in recipes
                 if not isinstance(r, ArchRecipe)]
        if wrong:
            raise GhnlibError(f'ArchDataset expects ArchRecipe objects '
                              f'(ghnlib.archspace), got {wrong[0]}')
        names = [r.name for r in recipes]
        if len(set(names)) != len(names):
            raise GhnlibError('ArchDataset: the recipes are not distinct')
        self.recipes = recipes
        self.input_shape = tuple(int(s) for s in input_shape)
        self.ve_cutoff = int(ve_cutoff)
        self.path = (None if cache_dir is None else os.path.join(
            os.fspath(cache_dir), f'archs-{self.digest()}.pt'))
        self.loaded_from_cache = False
        if self.path is not None and os.path.exists(self.path):
            self.graphs = self._read(self.path)
            self.loaded_from_cache = True
        else:
            self.graphs = self._convert(progress)
            if self.path is not None:
                self._write(self.path)

    def digest(self) -> str:
        r"""What the cache file is named after: every input of the
        conversion."""
        key = json.dumps({'recipes': [r.to_json() for r in self.recipes],
                          'input_shape': self.input_shape,
                          've_cutoff': self.ve_cutoff,
                          'vocabulary': VOCABULARY_VERSION,
                          'archspace': ARCHSPACE_VERSION}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def _convert(self, progress: bool) -> List[ArchGraph]:
        graphs = []
        for recipe in tqdm(self.recipes, desc='converting architectures',
                           disable=not progress, leave=False):
            with torch.device('meta'):
                model = build(recipe)
            graphs.append(to_graph(model, input_shape=self.input_shape,
                                   ve_cutoff=self.ve_cutoff))
        return graphs

    def _write(self, path: str) -> None:
        payload = {'format': _FORMAT, 'version': _FORMAT_VERSION,
                   'names': [r.name for r in self.recipes],
                   'graphs': [dict(g.to_dict()) for g in self.graphs]}
        atomic_write(path, lambda tmp: torch.save(payload, tmp))

    def _read(self, path: str) -> List[ArchGraph]:
        try:
            payload = torch.load(path, weights_only=True)
        except Exception as error:
            first_line = str(error).strip().splitlines()[:1]
            raise GhnlibError(
                f"the architecture cache '{path}' cannot be read "
                f"({type(error).__name__}: {''.join(first_line)}); delete it "
                'to convert the architectures again') from error
        names = [r.name for r in self.recipes]
        if (not isinstance(payload, dict)
                or payload.get('format') != _FORMAT
                or payload.get('version') != _FORMAT_VERSION
                or payload.get('names') != names
                or len(payload.get('graphs', ())) != len(names)):
            raise GhnlibError(
                f"'{path}' is not this dataset's architecture cache (another "
                'format or other architectures); delete it to convert them '
                'again')
        return [ArchGraph(**store) for store in payload['graphs']]

    def __len__(self) -> int:
        return len(self.recipes)

    def graph(self, index: int) -> ArchGraph:
        r"""The graph of architecture :obj:`index`."""
        return self.graphs[index]

    def model(self, index: int,
              device: Optional[Union[str, torch.device]] = None) -> nn.Module:
        r"""A fresh network of architecture :obj:`index` (default
        initialisation), in training mode."""
        with torch.device(device or 'cpu'):
            return build(self.recipes[index]).train()

    def __getitem__(self, index: int) -> Tuple[nn.Module, ArchGraph]:
        return self.model(index), self.graph(index)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({len(self)}, input_shape='
                f'{self.input_shape})')
