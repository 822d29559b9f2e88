r"""The ``ghnlib`` command.

.. code-block:: text

    ghnlib convert MODEL [--input-shape 1,3,32,32] [--png graph.png]
                         [--save graph.pt] [--ve-cutoff 50] [--no-strict]
    ghnlib convert --onnx model.onnx [--png graph.png] [--save graph.pt]
    ghnlib init MODEL --ghn CKPT [--noise-seed S] --out weights.safetensors

``MODEL`` is a ghnlib registry name (``resnet20``), a torchvision model name
(``resnet50``) or ``package.module:attr`` naming an ``nn.Module`` instance, a
module class or a builder function (called without arguments).
"""
import argparse
import importlib
import os
import sys
from typing import Optional, Sequence, Tuple

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

    ghn = GraphHyperNetwork.load(args.ghn)
    model, natural_shape = resolve_model(args.model)
    shape = args.input_shape or natural_shape or (1, 3, 32, 32)
    generator = None
    if args.noise_seed is not None:
        generator = torch.Generator().manual_seed(args.noise_seed)
    elif ghn.noise_dim:
        print('no --noise-seed: the noise is drawn at random', file=sys.stderr)
    ghn.init_(model, generator=generator, input_shape=shape)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = f'{args.out}.tmp'
    save_file(state, tmp, metadata={'model': args.model, 'ghn': args.ghn,
                                    'noise_seed': str(args.noise_seed)})
    os.replace(tmp, args.out)
    total = sum(p.numel() for p in model.parameters())
    print(f'{args.model}: {total:,} parameters predicted by {args.ghn}, '
          f'written to {args.out}')
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
    init.add_argument('--ghn', required=True, metavar='CKPT',
                      help='GHN checkpoint (GraphHyperNetwork.save)')
    init.add_argument('--noise-seed', type=int, metavar='S',
                      help='seed of the Noise GHN draw (reproducible)')
    init.add_argument('--input-shape', type=_shape, metavar='N,C,H,W')
    init.add_argument('--out', required=True, metavar='FILE',
                      help='where to write the weights (.safetensors)')
    init.set_defaults(run=_init)
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
