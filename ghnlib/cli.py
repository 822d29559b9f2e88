r"""The ``ghnlib`` command.

.. code-block:: text

    ghnlib convert MODEL [--input-shape 1,3,32,32] [--png graph.png]
                         [--save graph.pt] [--ve-cutoff 50] [--no-strict]
    ghnlib convert --onnx model.onnx [--png graph.png] [--save graph.pt]
    ghnlib init MODEL [--ghn CKPT|NAME] [--noise-seed S] --out weights.safetensors
    ghnlib train-ghn --dataset digits --archs resnet32,resnet44,resnet56
                     [--noise-dim 8] [--epochs 30] --out DIR [--resume]
    ghnlib train-net --arch resnet20 --init noise-ghn:DIR/ghn.safetensors
                     --dataset digits [--epochs N] --out DIR
    ghnlib zoo --arch resnet20 --dataset digits --n 100 [--first-seed 0]
               [--epochs N] --out ZOO
    ghnlib train-local ZOO --arch resnet20 --kind vae|vqvae --out DIR
    ghnlib train-hyperrep ZOO --out DIR
    ghnlib experiment --dataset digits --inits he,xavier,vae,vqvae,ghn,noise-ghn
                      [--members 25] [--quick] --out DIR

``MODEL`` is a ghnlib registry name (``resnet20``), a torchvision model name
(``resnet50``) or ``package.module:attr`` naming an ``nn.Module`` instance, a
module class or a builder function (called without arguments).
"""
import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError

__all__ = ['main', 'resolve_model']


def resolve_model(spec: str) -> Tuple[nn.Module, Optional[Tuple[int, ...]]]:
    """Builds the model named by :obj:`spec`.

    Returns:
        The model and its natural input shape if known (:obj:`None` if not).
    """
    from ghnlib import models

    if ':' in spec:
        module_name, _, attr = spec.partition(':')
        if module_name.split('.')[0] == 'torchvision':
            from ghnlib.utils.torchvision import import_torchvision
            import_torchvision()
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as error:
            raise GhnlibError(f"cannot import '{spec}': {error}") from error
        model = obj if isinstance(obj, nn.Module) else obj()
        if not isinstance(model, nn.Module):
            raise GhnlibError(f"'{spec}' gave a {type(model).__name__}, "
                              'expected a torch.nn.Module')
        return model, None
    if spec in models.list_models():
        return models.get_model(spec), None
    try:
        from ghnlib.utils.torchvision import import_torchvision
        torchvision = import_torchvision()
    except ImportError:
        torchvision = None
    if torchvision is not None and spec in torchvision.models.list_models():
        size = 299 if spec == 'inception_v3' else 224
        return torchvision.models.get_model(spec), (1, 3, size, size)
    known = ', '.join(models.list_models())
    hint = ('' if torchvision is not None else
            ' (torchvision is not installed, so its names are unavailable)')
    raise GhnlibError(f"unknown model '{spec}': not a ghnlib model ({known}), "
                      f"not a torchvision model{hint}, and not "
                      "'package.module:attr'")


def _shape(text: str) -> Tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace('x', ',').split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a shape; write it like 1,3,32,32") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a shape; sizes must be positive")
    return shape


def _convert(args: argparse.Namespace) -> int:
    from ghnlib.graph import draw_graph, from_onnx, to_graph

    if args.onnx:
        if args.model:
            raise GhnlibError('give either MODEL or --onnx FILE, not both')
        graph = from_onnx(args.onnx, strict=args.strict,
                          ve_cutoff=args.ve_cutoff)
        title, total = args.onnx, None
    elif args.model:
        model, natural_shape = resolve_model(args.model)
        shape = args.input_shape or natural_shape or (1, 3, 32, 32)
        graph = to_graph(model, input_shape=shape, strict=args.strict,
                         ve_cutoff=args.ve_cutoff)
        title = f'{args.model} ({type(model).__name__}, input {shape})'
        total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    else:
        raise GhnlibError('give a MODEL to convert or --onnx FILE')

    print(title)
    print(graph.summary())
    if total is not None:
        share = graph.num_params / total if total else 1.0
        print(f'parameter elements mapped / total: {graph.num_params:,} / '
              f'{total:,} ({share:.1%})')
    if args.png:
        draw_graph(graph, args.png)
        print(f'drawing written to {args.png}')
    if args.save:
        graph.save(args.save)
        print(f'graph written to {args.save}')
    return 0


def _init(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from ghnlib.nn import GraphHyperNetwork
    from ghnlib.nn.graph_hypernetwork import list_pretrained
    from ghnlib.utils.checkpoint import atomic_write

    if os.path.exists(args.ghn) or args.ghn not in list_pretrained():
        ghn = GraphHyperNetwork.load(args.ghn)
    else:
        ghn = GraphHyperNetwork.pretrained(args.ghn)
    model, natural_shape = resolve_model(args.model)
    shape = args.input_shape or natural_shape or (1, 3, 32, 32)
    generator = None
    if args.noise_seed is not None:
        generator = torch.Generator().manual_seed(args.noise_seed)
    elif ghn.noise_dim:
        print('no --noise-seed: the noise is drawn at random', file=sys.stderr)
    ghn.init_(model, generator=generator, input_shape=shape)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    metadata = {'model': args.model, 'ghn': args.ghn,
                'noise_seed': str(args.noise_seed)}
    atomic_write(args.out, lambda tmp: save_file(state, tmp,
                                                 metadata=metadata))
    total = sum(p.numel() for p in model.parameters())
    print(f'{args.model}: {total:,} parameters predicted by {args.ghn}, '
          f'written to {args.out}')
    return 0


def _ints(text: str) -> Tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(',') if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of integers; write it like 15,20") from None


def _names(text: str) -> Tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(',') if s.strip())
    if not names:
        raise argparse.ArgumentTypeError('give at least one name')
    return names


def load_splits(dataset: str, root: Optional[str], image_size: Optional[int],
                splits: Sequence[str] = ('train', 'val'),
                channels: Optional[int] = None):
    from ghnlib.data import get_splits
    return get_splits(dataset, splits, root=root, image_size=image_size,
                      channels=channels)


def _seed_list(text: str) -> List[int]:
    """``0-9,20,31`` → ``[0, 1, …, 9, 20, 31]``, distinct, in order."""
    seeds: List[int] = []
    for part in text.split(','):
        first, dash, last = part.strip().partition('-')
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'{part!r} is not a seed or a range like 0-9') from None
        if high < low:
            raise argparse.ArgumentTypeError(f'empty seed range {part!r}')
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f'seeds repeat in {text!r}')
    return seeds


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--dataset', default='digits',
                        help='digits (bundled), cifar10 or pcam')
    parser.add_argument('--root', metavar='DIR',
                        help="the dataset's folder (not for digits)")
    parser.add_argument('--image-size', type=int, metavar='S',
                        help='side the digits are resized to (default 16)')
    parser.add_argument('--channels', type=int, metavar='C',
                        help='channels of the digits (default 3)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available()
                        else 'cpu')
    parser.add_argument('--no-progress', dest='progress',
                        action='store_false', help='no progress bar')


def _distributed(device: str) -> str:
    """Joins the process group when started by torchrun; returns this
    process's device."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return device
    import torch.distributed as dist
    if device.startswith('cuda'):
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        torch.cuda.set_device(local_rank)
        device = f'cuda:{local_rank}'
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.startswith('cuda')
                                else 'gloo')
    return device


def _train_ghn(args: argparse.Namespace) -> int:
    from ghnlib.nn import GraphHyperNetwork
    from ghnlib.train.ghn_trainer import GHNTrainer, GHNTrainingConfig

    device = _distributed(args.device)
    train_set, val_set = load_splits(args.dataset, args.root, args.image_size,
                                     channels=args.channels)
    torch.manual_seed(args.seed)
    ghn = GraphHyperNetwork(hidden_channels=args.hidden,
                            max_shape=args.max_shape,
                            num_classes=train_set.num_classes,
                            noise_dim=args.noise_dim)
    config = GHNTrainingConfig(
        archs=args.archs, archs_per_step=args.archs_per_step,
        val_arch=args.val_arch, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, milestones=args.milestones,
        gamma=args.gamma, grad_clip=args.grad_clip,
        similarity_weight=args.similarity_weight,
        similarity_warmup=args.similarity_warmup, seed=args.seed,
        max_steps_per_epoch=args.max_steps_per_epoch,
        checkpoint_every=args.checkpoint_every)
    trainer = GHNTrainer(ghn, train_set, val_set, config, out_dir=args.out,
                         device=device, progress=args.progress)
    history = trainer.fit(resume=args.resume)
    if trainer.rank == 0 and history:
        last = history[-1]
        print(f"{args.val_arch} accuracy at initialisation (no training): "
              f"{last['val_accuracy']:.4f} after {last['epoch']} epochs; "
              f"skipped steps: {last['skipped_steps']}; GHN written to "
              f"{os.path.join(args.out, 'ghn.safetensors')}")
    return 0


def _train_net(args: argparse.Namespace) -> int:
    import json

    from safetensors.torch import save_file

    from ghnlib.models import get_model_for_input
    from ghnlib.train.evaluation import evaluate
    from ghnlib.train.initializers import initialize
    from ghnlib.train.net_trainer import train_network
    from ghnlib.utils.checkpoint import atomic_write

    train_set, val_set, test_set = load_splits(
        args.dataset, args.root, args.image_size, ('train', 'val', 'test'),
        args.channels)
    recipe = _recipe(args)
    input_shape = (1, ) + tuple(train_set[0][0].shape)
    try:
        model = get_model_for_input(args.arch, input_shape,
                                    num_classes=train_set.num_classes)
    except KeyError as error:
        raise GhnlibError(str(error)) from None
    generator = torch.Generator().manual_seed(args.init_seed)
    initialize(model, args.init, generator=generator, input_shape=input_shape)
    os.makedirs(args.out, exist_ok=True)
    history = train_network(
        model, train_set, val_set, recipe=recipe, eval_every=args.eval_every,
        max_steps=args.max_steps, keep_best=args.keep_best,
        device=args.device, seed=args.seed, progress=args.progress,
        log_path=os.path.join(args.out, 'log.jsonl'))
    test = evaluate(model, test_set, device=args.device)
    summary = dict(arch=args.arch, init=args.init, dataset=args.dataset,
                   recipe=dict(vars(recipe)), test_accuracy=test.accuracy,
                   test_loss=test.loss, **history.to_dict())
    state = {k: v.detach().contiguous().cpu()
             for k, v in model.state_dict().items()}
    atomic_write(os.path.join(args.out, 'weights.safetensors'),
                 lambda tmp: save_file(state, tmp, metadata={
                     'arch': args.arch, 'init': args.init}))
    atomic_write(os.path.join(args.out, 'history.json'),
                 lambda tmp: open(tmp, 'w').write(json.dumps(summary, indent=1)))
    print(f'{args.arch} ({args.init}): validation accuracy '
          f'{history.val_accuracy[0]:.4f} at step 0, '
          f'{history.val_accuracy[-1]:.4f} at step {history.steps[-1]} '
          f'(best {history.best_val_accuracy:.4f} at step '
          f'{history.best_step}); test accuracy {test.accuracy:.4f}; '
          f'written to {args.out}')
    return 0


def _recipe(args: argparse.Namespace):
    from ghnlib.train.net_trainer import SGDRecipe

    base = SGDRecipe.pcam() if args.dataset == 'pcam' else SGDRecipe.cifar10()
    changes = {k: v for k, v in dict(
        lr=args.lr, batch_size=args.batch_size, epochs=args.epochs,
        milestones=args.milestones, factors=args.factors,
        milestone_unit=args.milestone_unit).items() if v is not None}
    return base.replace(**changes)


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--epochs', type=int)
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--lr', type=float)
    parser.add_argument('--milestones', type=_ints)
    parser.add_argument('--factors', type=lambda t: tuple(
        float(s) for s in t.split(',')), metavar='F1,F2')
    parser.add_argument('--milestone-unit', choices=('epoch', 'step'))
    parser.add_argument('--eval-every', type=int, metavar='STEPS',
                        help='default: once per epoch')
    parser.add_argument('--max-steps', type=int)


def _zoo(args: argparse.Namespace) -> int:
    from ghnlib.train.zoo import build_zoo

    train_set, val_set, test_set = load_splits(
        args.dataset, args.root, args.image_size, ('train', 'val', 'test'),
        args.channels)
    seeds = (args.seeds if args.seeds is not None
             else range(args.first_seed, args.first_seed + args.n))
    members = build_zoo(args.arch, train_set, val_set, args.out, seeds=seeds,
                        recipe=_recipe(args), init=args.init,
                        eval_every=args.eval_every, max_steps=args.max_steps,
                        dataset=args.dataset, device=args.device,
                        progress=args.progress, test_set=test_set,
                        keep_epochs=args.keep_epochs)
    accuracy = torch.tensor([m.val_accuracy for m in members])
    spread = (f' ± {accuracy.std():.4f} (min {accuracy.min():.4f}, '
              f'max {accuracy.max():.4f})' if len(members) > 1 else '')
    print(f'{len(members)} {args.arch} in {args.out}: best validation '
          f'accuracy {accuracy.mean():.4f}{spread}')
    return 0


def _train_local(args: argparse.Namespace) -> int:
    from ghnlib.local.initializer import LocalInitializer

    shape = (1, 3, args.image_size or 16, args.image_size or 16)
    local = LocalInitializer.fit(
        args.zoo, args.arch, args.kind, prune_fraction=args.prune_fraction,
        epochs=args.epochs, max_slices=args.max_slices,
        prior=not args.no_prior, input_shape=shape, seed=args.seed,
        progress=args.progress)
    local.save(args.out)
    print(f'{local}: {len(local.layers)} layer models written to {args.out}'
          + (f'; without a model: {sorted(local.skipped)}'
             if local.skipped else ''))
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from ghnlib.experiments import ExperimentConfig, run_experiment

    options = {k: v for k, v in dict(
        dataset=args.dataset, root=args.root, arch=args.arch,
        inits=args.inits, members=args.members, epochs=args.epochs,
        eval_every=args.eval_every, milestones=args.milestones,
        thresholds=args.thresholds, ensembles=args.ensembles,
        ensemble_size=args.ensemble_size, severities=args.severities,
        cifar10c_root=args.cifar10c, ghn=args.ghn, noise_ghn=args.noise_ghn,
        ghn_epochs=args.ghn_epochs, vae=args.vae, vqvae=args.vqvae,
        hyperrep=args.hyperrep,
        zoo=args.zoo, zoo_members=args.zoo_members, seed=args.seed
    ).items() if v is not None}
    for name in ('image_size', 'channels'):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    config = (ExperimentConfig.quick(**options) if args.quick
              else ExperimentConfig(**options))
    results = run_experiment(config, args.out, device=args.device,
                             progress=args.progress)
    print(f"done in {results['seconds'] / 60:.1f} min: "
          f"{os.path.join(args.out, 'report.md')}")
    return 0


def _train_hyperrep(args: argparse.Namespace) -> int:
    from ghnlib.hyperrep import train_hyperrep

    hyperrep = train_hyperrep(
        args.zoo, args.out, arch=args.arch, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, permute=args.permute,
        contrast_weight=args.contrast_weight, latent_dim=args.latent_dim,
        top_fraction=args.top_fraction, seed=args.seed,
        progress=args.progress)
    print(f'{hyperrep}: written to {args.out}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ghnlib',
        description='Initialise neural networks with generative models.')
    commands = parser.add_subparsers(dest='command', required=True)
    convert = commands.add_parser(
        'convert', help='convert a model into its computational graph',
        description='Convert a model into its computational graph and print '
        'a summary: nodes by op, parameters mapped, what is unsupported.')
    convert.add_argument('model', nargs='?',
                         help='registry name, torchvision name or '
                         'package.module:attr')
    convert.add_argument('--onnx', metavar='FILE',
                         help='read the graph from an ONNX file instead')
    convert.add_argument('--input-shape', type=_shape, metavar='N,C,H,W',
                         help='shape of the example input (default: 224x224 '
                         'for torchvision models, 1,3,32,32 otherwise)')
    convert.add_argument('--png', metavar='FILE', help='draw the graph here')
    convert.add_argument('--save', metavar='FILE',
                         help='write the graph here (ArchGraph.load reads it)')
    convert.add_argument('--ve-cutoff', type=int, default=50,
                         help='longest path kept as a virtual edge')
    convert.add_argument('--no-strict', dest='strict', action='store_false',
                         help='report unplaceable parameters instead of '
                         'failing')
    convert.set_defaults(run=_convert)

    init = commands.add_parser(
        'init', help='initialise a model with a graph hypernetwork',
        description='Predict every parameter of MODEL with a trained GHN and '
        'write the model state as safetensors.')
    init.add_argument('model', help='registry name, torchvision name or '
                      'package.module:attr')
    init.add_argument('--ghn', default='digits-noise', metavar='CKPT',
                      help='GHN checkpoint (GraphHyperNetwork.save) or the '
                      'name of a GHN shipped with ghnlib (digits, '
                      'digits-noise; the default)')
    init.add_argument('--noise-seed', type=int, metavar='S',
                      help='seed of the Noise GHN draw (reproducible)')
    init.add_argument('--input-shape', type=_shape, metavar='N,C,H,W')
    init.add_argument('--out', required=True, metavar='FILE',
                      help='where to write the weights (.safetensors)')
    init.set_defaults(run=_init)

    train_ghn = commands.add_parser(
        'train-ghn', help='train a GHN or Noise GHN',
        description='Train a graph hypernetwork on an image dataset (eq. 2) '
        'or, with --noise-dim > 0, a Noise GHN (eq. 4). Resumable; runs '
        'under torchrun for several processes.')
    _add_data_arguments(train_ghn)
    train_ghn.add_argument('--archs', type=_names,
                           default=('resnet32', 'resnet44', 'resnet56'),
                           help='training architectures (registry names)')
    train_ghn.add_argument('--archs-per-step', type=int, metavar='K',
                           help='sample K of them per step (default: all)')
    train_ghn.add_argument('--val-arch', default='resnet20',
                           help='held-out architecture evaluated each epoch')
    train_ghn.add_argument('--noise-dim', type=int, default=0,
                           help='8 for the paper\'s Noise GHN')
    train_ghn.add_argument('--similarity-weight', type=float, default=1.0,
                           help='lambda of the similarity loss')
    train_ghn.add_argument('--similarity-warmup', type=float, default=0.0,
                           metavar='EPOCHS', help='ramp lambda up linearly '
                           'over this many epochs (default: 0, constant)')
    train_ghn.add_argument('--hidden', type=int, default=32)
    train_ghn.add_argument('--max-shape', type=_ints, default=(64, 64, 3, 3),
                           metavar='O,I,KH,KW')
    train_ghn.add_argument('--epochs', type=int, default=30)
    train_ghn.add_argument('--batch-size', type=int, default=64)
    train_ghn.add_argument('--lr', type=float, default=1e-3)
    train_ghn.add_argument('--weight-decay', type=float, default=0.0)
    train_ghn.add_argument('--milestones', type=_ints, default=(15, 20))
    train_ghn.add_argument('--gamma', type=float, default=0.1)
    train_ghn.add_argument('--grad-clip', type=float, default=5.0)
    train_ghn.add_argument('--max-steps-per-epoch', type=int, metavar='N')
    train_ghn.add_argument('--checkpoint-every', type=int, metavar='N',
                           help='also checkpoint every N steps')
    train_ghn.add_argument('--out', required=True, metavar='DIR')
    train_ghn.add_argument('--resume', action='store_true',
                           help='continue the run in --out')
    train_ghn.set_defaults(run=_train_ghn)

    train_net = commands.add_parser(
        'train-net', help='train a network from a chosen initialisation',
        description="Train a network with the paper's plain recipe (SGD, "
        'momentum 0.9, weight decay 1e-4, lr 0.1 with step decay, batch 128, '
        'no augmentation) from any initialisation, evaluating on the '
        'validation split along the way.')
    _add_data_arguments(train_net)
    train_net.add_argument('--arch', default='resnet20',
                           help='registry name of the network')
    train_net.add_argument('--init', default='he',
                           help='he, xavier, default, ghn:CKPT, '
                           'noise-ghn:CKPT')
    train_net.add_argument('--init-seed', type=int, default=0,
                           help='seed of the initialisation')
    _add_recipe_arguments(train_net)
    train_net.add_argument('--keep-best', action='store_true',
                           help='end with the best-validation weights')
    train_net.add_argument('--out', required=True, metavar='DIR')
    train_net.set_defaults(run=_train_net)

    zoo = commands.add_parser(
        'zoo', help='train a model zoo: one network per seed',
        description='Train N copies of an architecture with different seeds '
        "with the plain recipe, keeping each run's best-validation weights. "
        'Resumable: members already in --out are not trained again.')
    _add_data_arguments(zoo)
    zoo.add_argument('--arch', default='resnet20')
    zoo.add_argument('--n', type=int, default=100, help='members')
    zoo.add_argument('--first-seed', type=int, default=0,
                     help='members use seeds first-seed … first-seed+n-1')
    zoo.add_argument('--seeds', type=_seed_list, metavar='LIST',
                     help='the members\' seeds instead, e.g. 0-9,20,31 '
                     '(overrides --n and --first-seed)')
    zoo.add_argument('--init', default='he')
    zoo.add_argument('--keep-epochs', action='store_true',
                     help='also keep the weights at every evaluation (for '
                     'train-hyperrep)')
    _add_recipe_arguments(zoo)
    zoo.add_argument('--out', required=True, metavar='ZOO')
    zoo.set_defaults(run=_zoo)

    local = commands.add_parser(
        'train-local', help='fit per-layer kernel VAEs / VQ-VAEs on a zoo',
        description='Build the weight datasets (k×k kernel slices of every '
        'conv layer, lowest 5%% by l2 dropped) of a zoo and fit one VAE or '
        'VQ-VAE (with its autoregressive code prior) per layer.')
    local.add_argument('zoo', metavar='ZOO')
    local.add_argument('--arch', default='resnet20')
    local.add_argument('--kind', choices=('vae', 'vqvae'), default='vae')
    local.add_argument('--epochs', type=int, help="default: the recipe's")
    local.add_argument('--prune-fraction', type=float, default=0.05)
    local.add_argument('--max-slices', type=int, metavar='N',
                       help='train each layer model on at most N slices')
    local.add_argument('--no-prior', action='store_true',
                       help='vqvae: sample codes uniformly (no VQVAE* prior)')
    local.add_argument('--image-size', type=int, metavar='S',
                       help='input size for finding the conv layers')
    local.add_argument('--seed', type=int, default=0)
    local.add_argument('--no-progress', dest='progress', action='store_false')
    local.add_argument('--out', required=True, metavar='DIR')
    local.set_defaults(run=_train_local)

    hyperrep = commands.add_parser(
        'train-hyperrep', help='fit a hyper-representation on a zoo',
        description='Fit a transformer autoencoder over the neuron tokens of '
        'a zoo kept with --keep-epochs; new weights are sampled with a KDE '
        'in its latent space (--init hyperrep:DIR).')
    hyperrep.add_argument('zoo', metavar='ZOO')
    hyperrep.add_argument('--arch', help="default: the zoo's")
    hyperrep.add_argument('--epochs', type=int, default=40)
    hyperrep.add_argument('--batch-size', type=int, default=64)
    hyperrep.add_argument('--lr', type=float, default=1e-3)
    hyperrep.add_argument('--latent-dim', type=int, default=32,
                          help='latent numbers per token')
    hyperrep.add_argument('--contrast-weight', type=float, default=0.0)
    hyperrep.add_argument('--no-permute', dest='permute',
                          action='store_false',
                          help='no neuron-permutation augmentation')
    hyperrep.add_argument('--top-fraction', type=float, default=0.3,
                          help='KDE over the best share of the zoo')
    hyperrep.add_argument('--seed', type=int, default=0)
    hyperrep.add_argument('--no-progress', dest='progress',
                          action='store_false')
    hyperrep.add_argument('--out', required=True, metavar='DIR')
    hyperrep.set_defaults(run=_train_hyperrep)

    experiment = commands.add_parser(
        'experiment', help="the paper's experiments, with a report",
        description='Train the initialisers (or take given ones), train '
        'MEMBERS networks per initialisation with the plain recipe, and '
        'write report.md, results.json and figures: steps to thresholds, '
        'accuracy quartiles, ensembles under corruption, diversity. '
        'Resumable.')
    _add_data_arguments(experiment)
    experiment.add_argument('--quick', action='store_true',
                            help='small sizes: about ten minutes on 2 cores')
    experiment.add_argument('--arch')
    experiment.add_argument('--inits', type=_names,
                            help='from he,xavier,default,vae,vqvae,ghn,'
                            'noise-ghn,hyperrep')
    experiment.add_argument('--members', type=int)
    experiment.add_argument('--epochs', type=int)
    experiment.add_argument('--eval-every', type=int, metavar='STEPS')
    experiment.add_argument('--milestones', type=_ints)
    experiment.add_argument('--thresholds', type=lambda t: tuple(
        float(s) for s in t.split(',')), metavar='A1,A2')
    experiment.add_argument('--ensembles', type=int, metavar='E')
    experiment.add_argument('--ensemble-size', type=int, metavar='M')
    experiment.add_argument('--severities', type=_ints)
    experiment.add_argument('--cifar10c', metavar='DIR',
                            help='CIFAR-10-C folder (else corruptions are '
                            'applied to the test set)')
    for name in ('ghn', 'noise-ghn'):
        experiment.add_argument(f'--{name}', metavar='CKPT',
                                help='checkpoint or shipped name')
    experiment.add_argument('--ghn-epochs', type=int)
    experiment.add_argument('--vae', metavar='DIR')
    experiment.add_argument('--vqvae', metavar='DIR')
    experiment.add_argument('--hyperrep', metavar='DIR')
    experiment.add_argument('--zoo', metavar='DIR')
    experiment.add_argument('--zoo-members', type=int)
    experiment.add_argument('--out', required=True, metavar='DIR')
    experiment.set_defaults(run=_experiment)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GhnlibError as error:
        print(f'ghnlib {args.command}: error: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
