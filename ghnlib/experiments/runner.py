r"""The paper's section-4 protocol as one resumable run: train the
initialisers, train K networks per initialisation, measure them."""
import dataclasses
import json
import os
import random
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ghnlib.data import get_splits, load_cifar10c
from ghnlib.data.corruptions import CorruptedDataset
from ghnlib.errors import GhnlibError
from ghnlib.experiments.analysis import analyse
from ghnlib.experiments.report import write_report
from ghnlib.init import initialize
from ghnlib.local import LocalInitializer
from ghnlib.local.initializer import FILE
from ghnlib.models import get_model_for_input
from ghnlib.nn import GraphHyperNetwork
from ghnlib.nn.graph_hypernetwork import PRETRAINED_DIR, list_pretrained
from ghnlib.train import train_network
from ghnlib.train.ghn_trainer import GHNTrainer, GHNTrainingConfig
from ghnlib.train.net_trainer import SGDRecipe
from ghnlib.utils.checkpoint import atomic_write
from ghnlib.zoo import build_zoo

__all__ = ['ExperimentConfig', 'run_experiment', 'INITS']

#: Initialisations the runner knows how to obtain.
INITS = ('he', 'xavier', 'default', 'vae', 'vqvae', 'ghn', 'noise-ghn',
         'hyperrep')


@dataclasses.dataclass
class ExperimentConfig:
    r"""What :func:`run_experiment` does; sizes default to a run of an hour
    or so on a CPU for digits (:meth:`quick` is about ten minutes).

    Args:
        dataset (str): :obj:`'digits'`, :obj:`'cifar10'` or :obj:`'pcam'`.
            (default: :obj:`'digits'`)
        root (str, optional): The dataset's folder (not for digits).
        image_size (int): Side of the digits images. (default: :obj:`16`)
        channels (int): Channels of the digits images; the evaluated
            networks are built for them where their builder takes
            :obj:`in_channels` (e.g. 1 at 28×28 for :obj:`'small_cnn'`).
            (default: :obj:`3`)
        arch (str): The evaluated architecture. (default: :obj:`'resnet20'`)
        inits (Sequence[str]): Initialisations to compare (:obj:`INITS`).
        members (int): Networks trained per initialisation (the paper: 25).
        epochs (int): Epochs of the plain recipe per network.
        eval_every (int, optional): Steps between validations; once per
            epoch when not given.
        lr (float): Initial SGD learning rate (the paper: 0.1).
        milestones (Sequence[int]): Epochs where the learning rate is
            divided by 5, then by 2 (the paper: 80, 100 of 120).
        thresholds (Sequence[float]): Validation accuracies for the
            steps-to-threshold table (the paper: 0.65 / 0.75 on CIFAR-10,
            0.80 / 0.85 on PCam).
        ensembles (int): Random ensembles :math:`E` drawn per
            initialisation.
        ensemble_size (int): Members :math:`M` of each ensemble.
        corruptions (Sequence[str]): Corruptions for the out-of-distribution
            evaluation (:obj:`ghnlib.data.corruptions.CORRUPTIONS`), or
            CIFAR-10-C's files when :obj:`cifar10c_root` is given.
        severities (Sequence[int]): Severities 1–5 evaluated.
        cifar10c_root (str, optional): The CIFAR-10-C folder; without it
            the corruptions are applied to the test set.
        ghn (str, optional): GHN checkpoint (a path, or the name of a
            shipped GHN); without it, digits at 16×16 uses the shipped one
            and other datasets train their own.
        noise_ghn (str, optional): Noise GHN checkpoint, likewise.
        ghn_epochs (int): Epochs when a GHN is trained here.
        vae (str, optional): VAE local initialiser folder; without it a
            zoo is trained here and the models fit on it.
        vqvae (str, optional): VQ-VAE local initialiser folder, likewise.
        hyperrep (str, optional): A :class:`~ghnlib.hyperrep.HyperRepresentation`
            folder of the evaluated architecture (needed for
            :obj:`'hyperrep'`; it is not trained here).
        zoo (str, optional): An existing zoo folder to fit on.
        zoo_members (int): Members of a zoo trained here.
        zoo_epochs (int): Epochs of each of its members.
        local_epochs (int, optional): Epochs of each kernel model.
        max_slices (int, optional): Slices per layer model.
        seed (int): Seeds every member (member k uses seed + k).
    """
    dataset: str = 'digits'
    root: Optional[str] = None
    image_size: int = 16
    channels: int = 3
    arch: str = 'resnet20'
    inits: Sequence[str] = ('he', 'xavier', 'vae', 'vqvae', 'ghn',
                            'noise-ghn')
    members: int = 25
    epochs: int = 10
    eval_every: Optional[int] = None
    lr: float = 0.1
    milestones: Sequence[int] = (6, 8)
    thresholds: Sequence[float] = (0.8, 0.9)
    ensembles: int = 10
    ensemble_size: int = 5
    corruptions: Sequence[str] = ('gaussian_noise', 'shot_noise',
                                  'gaussian_blur', 'contrast', 'brightness')
    severities: Sequence[int] = (1, 2, 3, 4, 5)
    cifar10c_root: Optional[str] = None
    ghn: Optional[str] = None
    noise_ghn: Optional[str] = None
    ghn_epochs: int = 30
    vae: Optional[str] = None
    vqvae: Optional[str] = None
    hyperrep: Optional[str] = None
    zoo: Optional[str] = None
    zoo_members: int = 20
    zoo_epochs: int = 15
    local_epochs: Optional[int] = None
    max_slices: Optional[int] = 20000
    seed: int = 0

    @classmethod
    def quick(cls, **changes) -> 'ExperimentConfig':
        """About ten minutes on two CPU cores for digits."""
        options = dict(members=6, epochs=3, eval_every=3, milestones=(),
                       ensembles=6, ensemble_size=3, severities=(1, 3, 5),
                       zoo_members=6, zoo_epochs=6, local_epochs=4,
                       max_slices=4000)
        options.update(changes)
        return cls(**options)

    def to_dict(self) -> Dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


class _Context:
    def __init__(self, config: ExperimentConfig, out_dir: str, device,
                 progress: bool):
        self.config, self.out_dir = config, out_dir
        self.device, self.progress = device, progress
        digits = config.dataset == 'digits'
        if not digits and config.channels != 3:
            raise GhnlibError(f'channels applies to digits only, not '
                              f'{config.dataset!r}')
        self.train, self.val, self.test = get_splits(
            config.dataset, ('train', 'val', 'test'), root=config.root,
            image_size=config.image_size if digits else None,
            channels=config.channels if digits else None)
        self.input_shape = (1, ) + tuple(self.train[0][0].shape)

    def log(self, message: str) -> None:
        if self.progress:
            print(message, flush=True)

    def recipe(self):
        factors = (0.2, 0.5)[:len(self.config.milestones)]
        return SGDRecipe(lr=self.config.lr, epochs=self.config.epochs,
                         milestones=tuple(self.config.milestones),
                         factors=factors)


def _shipped(name: Optional[str]) -> Optional[str]:
    if name is not None and not os.path.exists(name) and \
            name in list_pretrained():
        return os.path.join(PRETRAINED_DIR, f'{name}.safetensors')
    return name


def _ghn_spec(ctx: _Context, noise: bool) -> str:
    config = ctx.config
    given = _shipped(config.noise_ghn if noise else config.ghn)
    kind = 'noise-ghn' if noise else 'ghn'
    if given is None and config.dataset == 'digits' and \
            ctx.input_shape[1:] == (3, 16, 16):
        given = _shipped('digits-noise' if noise else 'digits')
    if given is not None:
        return f'{kind}:{given}'
    run_dir = os.path.join(ctx.out_dir, kind)
    path = os.path.join(run_dir, 'ghn.safetensors')
    done = os.path.join(run_dir, 'done')
    if not os.path.exists(done):
        ctx.log(f'training the {kind} ({config.ghn_epochs} epochs) …')
        torch.manual_seed(config.seed)
        ghn = GraphHyperNetwork(num_classes=ctx.train.num_classes,
                                noise_dim=8 if noise else 0)
        recipe = GHNTrainingConfig(
            epochs=config.ghn_epochs, seed=config.seed,
            milestones=(config.ghn_epochs // 2, 2 * config.ghn_epochs // 3),
            similarity_warmup=config.ghn_epochs / 3 if noise else 0.0)
        trainer = GHNTrainer(ghn, ctx.train, ctx.val, recipe, out_dir=run_dir,
                             device=ctx.device, progress=ctx.progress)
        trainer.fit(resume=os.path.exists(os.path.join(run_dir,
                                                       'checkpoint.pt')))
        atomic_write(done, lambda tmp: open(tmp, 'w').close())
    return f'{kind}:{path}'


def _local_spec(ctx: _Context, kind: str) -> str:
    config = ctx.config
    given = config.vae if kind == 'vae' else config.vqvae
    if given is not None:
        return f'{kind}:{given}'
    directory = os.path.join(ctx.out_dir, kind)
    if not os.path.exists(os.path.join(directory, FILE)):
        zoo = config.zoo or _build_zoo(ctx)
        ctx.log(f'fitting per-layer {kind} models on {zoo} …')
        LocalInitializer.fit(zoo, config.arch, kind,
                             epochs=config.local_epochs,
                             max_slices=config.max_slices,
                             input_shape=ctx.input_shape,
                             seed=config.seed).save(directory)
    return f'{kind}:{directory}'


def _build_zoo(ctx: _Context) -> str:
    config = ctx.config
    directory = os.path.join(ctx.out_dir, 'zoo')
    # Zoo seeds differ from the evaluated members' seeds.
    seeds = range(10_000 + config.seed, 10_000 + config.seed +
                  config.zoo_members)
    done = len(os.listdir(directory)) if os.path.isdir(directory) else 0
    if done < config.zoo_members:
        ctx.log(f'training a zoo of {config.zoo_members} {config.arch} …')
    recipe = ctx.recipe()
    recipe = recipe.replace(epochs=config.zoo_epochs, milestones=(),
                            factors=())
    build_zoo(config.arch, ctx.train, ctx.val, directory, seeds=seeds,
              recipe=recipe, dataset=config.dataset, device=ctx.device,
              progress=False)
    return directory


def _resolve(ctx: _Context, init: str) -> str:
    if init in ('ghn', 'noise-ghn'):
        return _ghn_spec(ctx, init == 'noise-ghn')
    if init in ('vae', 'vqvae'):
        return _local_spec(ctx, init)
    if init in ('he', 'xavier', 'default'):
        return init
    if init == 'hyperrep':
        if ctx.config.hyperrep is None:
            raise GhnlibError("the 'hyperrep' initialisation needs a fitted "
                              'hyper-representation of the evaluated '
                              'architecture: pass --hyperrep DIR (ghnlib '
                              'train-hyperrep)')
        return f'hyperrep:{ctx.config.hyperrep}'
    raise GhnlibError(f'unknown initialisation {init!r}; the runner knows '
                      f'{list(INITS)}')


def _ood_sets(ctx: _Context) -> List[Tuple[str, int, Any]]:
    config = ctx.config
    sets = []
    if config.cifar10c_root is not None:
        mean, std = ctx.train.mean, ctx.train.std
        for name in config.corruptions:
            for severity in config.severities:
                sets.append((name, severity, load_cifar10c(
                    config.cifar10c_root, name, severity, mean=mean, std=std)))
        return sets
    for name in config.corruptions:
        for severity in config.severities:
            sets.append((name, severity, CorruptedDataset(
                ctx.test, name, severity, seed=config.seed)))
    return sets


@torch.no_grad()
def _logits(model, dataset, device) -> Tensor:
    from torch.utils.data import DataLoader
    model.eval()
    out = [model(x.to(device)).float().cpu()
           for x, _ in DataLoader(dataset, batch_size=512)]
    return torch.cat(out)


def _train_member(ctx: _Context, init: str, spec: str, k: int,
                  ood) -> Dict[str, Any]:
    from safetensors.torch import load_file, save_file

    path = os.path.join(ctx.out_dir, 'members', init, f'{k:03d}.safetensors')
    if os.path.exists(path):
        try:
            from safetensors import safe_open
            with safe_open(path, framework='pt') as reader:
                meta = json.loads(reader.metadata()['history'])
            return {'history': meta, 'logits': load_file(path)}
        except Exception:
            os.remove(path)  # unreadable: train this member again
    seed = ctx.config.seed + k
    model = get_model_for_input(ctx.config.arch, ctx.input_shape,
                                num_classes=ctx.train.num_classes)
    initialize(model, spec, generator=torch.Generator().manual_seed(seed),
               input_shape=ctx.input_shape)
    history = train_network(model, ctx.train, ctx.val, recipe=ctx.recipe(),
                            eval_every=ctx.config.eval_every, seed=seed,
                            device=ctx.device, progress=False)
    logits = {'clean': _logits(model, ctx.test, ctx.device)}
    for name, severity, dataset in ood:
        logits[f'{name}/{severity}'] = _logits(model, dataset, ctx.device)
    logits = {key: value.half().contiguous() for key, value in logits.items()}
    record = history.to_dict()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda tmp: save_file(
        logits, tmp, metadata={'history': json.dumps(record)}))
    return {'history': record, 'logits': logits}


def run_experiment(config: ExperimentConfig,
                   out_dir: Union[str, os.PathLike], *,
                   device: Union[str, torch.device] = 'cpu',
                   progress: bool = True) -> Dict[str, Any]:
    r"""Runs the protocol and writes :obj:`results.json`, :obj:`report.md`
    and the figures into :obj:`out_dir`; returns the results.

    Resumable: initialisers already trained and members already finished
    (one file each, written atomically) are reused, so an interrupted run
    continues where it stopped.
    """

    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    unknown = [i for i in config.inits if i not in INITS]
    if unknown:
        raise GhnlibError(f'unknown initialisations {unknown}; choose from '
                          f'{list(INITS)}')
    if config.members < 1 or config.ensemble_size > config.members:
        raise GhnlibError(f'need members >= 1 and ensemble_size <= members, '
                          f'got {config.members} and {config.ensemble_size}')
    start = time.perf_counter()
    ctx = _Context(config, out_dir, torch.device(device), progress)
    ood = _ood_sets(ctx)
    specs = {init: _resolve(ctx, init) for init in config.inits}
    runs: Dict[str, List[Dict[str, Any]]] = {}
    labels = ctx.test.labels if hasattr(ctx.test, 'labels') else torch.tensor(
        [int(y) for _, y in ctx.test])
    for init, spec in specs.items():
        ctx.log(f'{init}: training {config.members} {config.arch} …')
        runs[init] = [_train_member(ctx, init, spec, k, ood)
                      for k in range(config.members)]
    ood_labels = {f'{name}/{severity}': (dataset.labels if hasattr(
        dataset, 'labels') else labels) for name, severity, dataset in ood}
    rng = random.Random(config.seed)
    results = analyse(config, runs, labels, ood_labels, rng)
    results['config'] = config.to_dict()
    results['specs'] = specs
    results['seconds'] = time.perf_counter() - start

    def write(tmp):
        with open(tmp, 'w') as handle:
            json.dump(results, handle, indent=1)
    atomic_write(os.path.join(out_dir, 'results.json'), write)
    write_report(results, out_dir)
    ctx.log(f'report: {os.path.join(out_dir, "report.md")}')
    return results
