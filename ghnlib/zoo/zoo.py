r"""Model zoos: many copies of one architecture trained with different seeds."""
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

from ghnlib.errors import GhnlibError
from ghnlib.init import initialize
from ghnlib.models import get_model, get_model_for_input
from ghnlib.train.evaluation import evaluate
from ghnlib.train.net_trainer import SGDRecipe, train_network
from ghnlib.utils.checkpoint import atomic_write

__all__ = ['ZooMember', 'ZooCheckpoint', 'build_zoo', 'load_zoo']

_FORMAT = 'ghnlib.ZooMember'
_CHECKPOINTS_FORMAT = 'ghnlib.ZooCheckpoints'
INDEX = 'zoo.json'
#: Sub-folder of a zoo holding, per member, the weights at every evaluation.
CHECKPOINTS_DIR = 'checkpoints'


@dataclasses.dataclass
class ZooCheckpoint:
    """A member's weights (and buffers) at one evaluation of its training,
    with the accuracies measured there (:obj:`test_accuracy` is :obj:`None`
    when the zoo was built without a test set)."""
    step: int
    epoch: float
    val_accuracy: float
    test_accuracy: Optional[float]
    state: Dict[str, torch.Tensor] = dataclasses.field(repr=False)


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
    test_accuracy: Optional[float] = None
    input_shape: Optional[Tuple[int, ...]] = None

    @property
    def checkpoints_path(self) -> str:
        """Where :func:`build_zoo` with :obj:`keep_epochs=True` keeps the
        member's per-evaluation weights."""
        directory, name = os.path.split(self.path)
        return os.path.join(directory, CHECKPOINTS_DIR, name)

    @property
    def has_checkpoints(self) -> bool:
        """Whether the member's per-evaluation weights were kept."""
        return os.path.isfile(self.checkpoints_path)

    def checkpoints(self) -> List[ZooCheckpoint]:
        """The member's weights at every evaluation (once per epoch by
        default, step 0 first), kept by :func:`build_zoo` with
        :obj:`keep_epochs=True`."""
        from safetensors import safe_open
        path = self.checkpoints_path
        if not os.path.isfile(path):
            raise GhnlibError(f"zoo member '{self.path}' has no per-epoch "
                              f"checkpoints (expected '{path}'); build the "
                              'zoo with keep_epochs=True (`ghnlib zoo '
                              '--keep-epochs`) in a new folder')
        try:
            with safe_open(path, framework='pt') as reader:
                meta = reader.metadata() or {}
                tensors = {k: reader.get_tensor(k) for k in reader.keys()}
            if meta.get('format') != _CHECKPOINTS_FORMAT:
                raise ValueError('not a zoo checkpoints file')
            entries = json.loads(meta['evaluations'])
            result = []
            for index, entry in enumerate(entries):
                prefix = f'{index:04d}/'
                state = {k[len(prefix):]: v for k, v in tensors.items()
                         if k.startswith(prefix)}
                if not state:
                    raise ValueError(f'evaluation {index} holds no weights')
                result.append(ZooCheckpoint(
                    int(entry['step']), float(entry['epoch']),
                    float(entry['val_accuracy']),
                    None if entry['test_accuracy'] is None
                    else float(entry['test_accuracy']), state))
        except Exception as error:
            raise GhnlibError(f"'{path}' is not readable zoo checkpoints "
                              f'({type(error).__name__}: {error}); delete it '
                              'and the member file next to it, and run the '
                              'zoo again to retrain that member') from error
        return result

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
        """A fresh model of :obj:`arch` (built for the member's input shape
        where it is recorded) holding the member's weights."""
        model = (get_model(self.arch, **kwargs) if self.input_shape is None
                 else get_model_for_input(self.arch, self.input_shape,
                                          **kwargs))
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
    test_accuracy = meta.get('test_accuracy')
    input_shape = meta.get('input_shape')
    return ZooMember(path, meta['arch'], int(meta['seed']),
                     float(meta['val_accuracy']), int(meta['best_step']),
                     meta['dataset'], meta['init'],
                     None if test_accuracy is None else float(test_accuracy),
                     None if input_shape is None
                     else tuple(json.loads(input_shape)))


def build_zoo(arch: str, train_set: Dataset, val_set: Dataset,
              out_dir: Union[str, os.PathLike], *, seeds: Sequence[int],
              recipe: SGDRecipe = SGDRecipe(), init: str = 'he',
              eval_every: Optional[int] = None,
              max_steps: Optional[int] = None, dataset: str = '',
              device: Union[str, torch.device] = 'cpu',
              progress: bool = True, test_set: Optional[Dataset] = None,
              keep_epochs: bool = False) -> List[ZooMember]:
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
        test_set (Dataset, optional): Also measures the test accuracy of the
            kept weights (and of every checkpoint with :obj:`keep_epochs`)
            for the metadata; never used for selection. (default:
            :obj:`None`)
        keep_epochs (bool, optional): Also keep the weights at every
            evaluation (step 0 and once per epoch by default) with their
            accuracies, in :obj:`checkpoints/member_SEED.safetensors`
            (:meth:`ZooMember.checkpoints`), as hyper-representations train
            on. (default: :obj:`False`)
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
        checkpoints_path = os.path.join(out_dir, CHECKPOINTS_DIR,
                                        os.path.basename(path))
        if os.path.exists(path) and (not keep_epochs
                                     or os.path.exists(checkpoints_path)):
            member = _read_member(path)
            if member.arch != arch:
                raise GhnlibError(f"'{path}' holds a {member.arch}, this zoo "
                                  f'is of {arch}: use another folder')
            members.append(member)
            continue
        model = get_model_for_input(arch, input_shape)
        initialize(model, init, generator=torch.Generator().manual_seed(seed),
                   input_shape=input_shape)
        kept: List[Tuple[int, Dict[str, torch.Tensor], Optional[float]]] = []

        def keep(step: int, trained: torch.nn.Module) -> None:
            test = (None if test_set is None
                    else evaluate(trained, test_set).accuracy)
            state = ({k: v.detach().to('cpu', copy=True)
                      for k, v in trained.state_dict().items()}
                     if keep_epochs else {})
            kept.append((step, state, test))

        on_evaluation = keep if keep_epochs or test_set is not None else None
        history = train_network(model, train_set, val_set, recipe=recipe,
                                eval_every=eval_every, max_steps=max_steps,
                                device=device, seed=seed, progress=progress,
                                on_evaluation=on_evaluation)
        state = {k: v.contiguous() for k, v in history.best_state.items()}
        meta = {'format': _FORMAT, 'arch': arch, 'seed': str(seed),
                'val_accuracy': repr(history.best_val_accuracy),
                'best_step': str(history.best_step), 'dataset': dataset,
                'init': init, 'history': json.dumps(history.to_dict()),
                'input_shape': json.dumps(list(input_shape))}
        if test_set is not None:
            best = history.steps.index(history.best_step)
            meta['test_accuracy'] = repr(kept[best][2])
        if keep_epochs:
            _write_checkpoints(checkpoints_path, kept, history,
                               len(train_set), recipe.batch_size)
        atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
        members.append(_read_member(path))
        _write_index(out_dir)
    _write_index(out_dir)
    return members


def _write_checkpoints(path: str, kept: list, history, num_train: int,
                       batch_size: int) -> None:
    from safetensors.torch import save_file
    steps_per_epoch = -(-num_train // batch_size)
    tensors, evaluations = {}, []
    for index, ((step, state, test), val) in enumerate(
            zip(kept, history.val_accuracy)):
        for key, value in state.items():
            tensors[f'{index:04d}/{key}'] = value.contiguous()
        evaluations.append(dict(step=step, epoch=step / steps_per_epoch,
                                val_accuracy=val, test_accuracy=test))
    meta = {'format': _CHECKPOINTS_FORMAT,
            'evaluations': json.dumps(evaluations)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


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

