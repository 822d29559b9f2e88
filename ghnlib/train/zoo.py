r"""Model zoos: many copies of one architecture trained with different seeds."""
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch.utils.data import Dataset

from ghnlib.errors import GhnlibError
from ghnlib.models import get_model
from ghnlib.train.initializers import initialize
from ghnlib.train.net_trainer import SGDRecipe, train_network
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['ZooMember', 'build_zoo', 'load_zoo']

_FORMAT = 'ghnlib.ZooMember'
INDEX = 'zoo.json'


@dataclasses.dataclass
class ZooMember:
    """One trained network of a zoo: its file and metadata."""
    path: str
    arch: str
    seed: int
    val_accuracy: float
    best_step: int
    dataset: str
    init: str

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The member's best-validation weights (and buffers)."""
        from safetensors.torch import load_file
        try:
            return load_file(self.path)
        except Exception as error:
            raise GhnlibError(f"zoo member '{self.path}' is unreadable "
                              f'({type(error).__name__}: {error}); delete it '
                              'and run the zoo again to retrain it') from error

    def model(self, **kwargs) -> torch.nn.Module:
        """A fresh model of :obj:`arch` holding the member's weights."""
        model = get_model(self.arch, **kwargs)
        model.load_state_dict(self.state_dict())
        return model


def _member_path(out_dir: str, seed: int) -> str:
    return os.path.join(out_dir, f'member_{seed:05d}.safetensors')


def _read_member(path: str) -> ZooMember:
    from safetensors import safe_open
    try:
        with safe_open(path, framework='pt') as reader:
            meta = reader.metadata() or {}
    except Exception as error:
        raise GhnlibError(f"'{path}' is not a readable zoo member "
                          f'({type(error).__name__}: {error}); delete it and '
                          'run the zoo again') from error
    if meta.get('format') != _FORMAT:
        raise GhnlibError(f"'{path}' is a safetensors file but not a zoo "
                          'member')
    return ZooMember(path, meta['arch'], int(meta['seed']),
                     float(meta['val_accuracy']), int(meta['best_step']),
                     meta['dataset'], meta['init'])


def build_zoo(arch: str, train_set: Dataset, val_set: Dataset,
              out_dir: Union[str, os.PathLike], *, seeds: Sequence[int],
              recipe: SGDRecipe = SGDRecipe(), init: str = 'he',
              eval_every: Optional[int] = None,
              max_steps: Optional[int] = None, dataset: str = '',
              device: Union[str, torch.device] = 'cpu',
              progress: bool = True) -> List[ZooMember]:
    r"""Trains one :obj:`arch` per seed (initialisation and data order both
    follow the seed) and keeps each run's best-validation weights as
    :obj:`member_SEED.safetensors` in :obj:`out_dir`, with its metadata, and
    an index :obj:`zoo.json`.

    Members already on disk are not trained again, so an interrupted zoo
    continues with the missing ones (each file is written atomically: it is
    complete or absent).

    Args:
        arch (str): Registry name of the architecture.
        train_set (Dataset): Training items :obj:`(image, label)`.
        val_set (Dataset): Validation items (selects the best weights).
        out_dir (str): The zoo's folder.
        seeds (Sequence[int]): One member per seed.
        recipe (SGDRecipe, optional): (default: :obj:`SGDRecipe()`)
        init (str, optional): Initialisation scheme of every member, see
            :func:`~ghnlib.train.initialize`. (default: :obj:`'he'`)
        eval_every (int, optional): Steps between validations.
            (default: :obj:`None`, once per epoch)
        max_steps (int, optional): Cut each run short. (default: :obj:`None`)
        dataset (str, optional): The dataset's name, for the metadata.
            (default: :obj:`''`)
        device (str or torch.device, optional): (default: :obj:`'cpu'`)
        progress (bool, optional): Progress bars. (default: :obj:`True`)
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    seeds = list(seeds)
    if len(set(seeds)) != len(seeds):
        raise GhnlibError(f'zoo seeds must be distinct, got {seeds}')
    from safetensors.torch import save_file
    input_shape = (1, ) + tuple(train_set[0][0].shape)
    members = []
    for seed in seeds:
        path = _member_path(out_dir, seed)
        if os.path.exists(path):
            member = _read_member(path)
            if member.arch != arch:
                raise GhnlibError(f"'{path}' holds a {member.arch}, this zoo "
                                  f'is of {arch}: use another folder')
            members.append(member)
            continue
        model = get_model(arch)
        initialize(model, init, generator=torch.Generator().manual_seed(seed),
                   input_shape=input_shape)
        history = train_network(model, train_set, val_set, recipe=recipe,
                                eval_every=eval_every, max_steps=max_steps,
                                device=device, seed=seed, progress=progress)
        state = {k: v.contiguous() for k, v in history.best_state.items()}
        meta = {'format': _FORMAT, 'arch': arch, 'seed': str(seed),
                'val_accuracy': repr(history.best_val_accuracy),
                'best_step': str(history.best_step), 'dataset': dataset,
                'init': init, 'history': json.dumps(history.to_dict())}
        atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
        members.append(_read_member(path))
        _write_index(out_dir)
    _write_index(out_dir)
    return members


def _write_index(out_dir: str) -> None:
    members = load_zoo(out_dir)
    index = [dict(dataclasses.asdict(m), path=os.path.basename(m.path))
             for m in members]

    def write(tmp):
        with open(tmp, 'w') as handle:
            json.dump(index, handle, indent=1)
    atomic_write(os.path.join(out_dir, INDEX), write)


def load_zoo(zoo_dir: Union[str, os.PathLike],
             arch: Optional[str] = None) -> List[ZooMember]:
    """The members in :obj:`zoo_dir`, by seed; with :obj:`arch`, refuses a
    zoo of another architecture."""
    zoo_dir = os.fspath(zoo_dir)
    if not os.path.isdir(zoo_dir):
        raise GhnlibError(f"no model zoo at '{zoo_dir}': build one with "
                          '`ghnlib zoo --arch ARCH --out DIR`')
    members = [_read_member(os.path.join(zoo_dir, name))
               for name in sorted(os.listdir(zoo_dir))
               if name.startswith('member_') and name.endswith('.safetensors')]
    if arch is not None:
        other = sorted({m.arch for m in members} - {arch})
        if other:
            raise GhnlibError(f"the zoo in '{zoo_dir}' holds {other}, not "
                              f'{arch}')
    return sorted(members, key=lambda m: m.seed)

