r"""``ghnlib convert``."""
import dataclasses
from typing import Annotated, Optional

import tyro

from ghnlib.cli.constructors import Shape
from ghnlib.cli.resolve_model import resolve_model
from ghnlib.errors import GhnlibError
from ghnlib.graph import DEFAULT_VE_CUTOFF, draw_graph, from_onnx, to_graph

__all__ = ['Convert']


@dataclasses.dataclass
class Convert:
    r"""Convert a model into its computational graph and print a summary:
    nodes by op, parameters mapped, what is unsupported.

    Args:
        model (str, optional): Registry name, torchvision name or
            package.module:attr.
        onnx (str, optional): Read the graph from this ONNX file instead.
        input_shape (Shape, optional): Shape of the example input; 224×224
            for torchvision models, 1,3,32,32 otherwise.
        png (str, optional): Draw the graph into this PNG file.
        save (str, optional): Write the graph here (ArchGraph.load reads it).
        ve_cutoff (int): Longest path kept as a virtual edge.
        strict (bool): Fail on parameters that cannot be placed; with
            --no-strict they are reported instead.
    """
    model: tyro.conf.Positional[Annotated[
        Optional[str], tyro.conf.arg(metavar='MODEL')]] = None
    onnx: Annotated[Optional[str], tyro.conf.arg(metavar='FILE')] = None
    input_shape: Optional[Shape] = None
    png: Annotated[Optional[str], tyro.conf.arg(metavar='FILE')] = None
    save: Annotated[Optional[str], tyro.conf.arg(metavar='FILE')] = None
    ve_cutoff: int = DEFAULT_VE_CUTOFF
    strict: bool = True

    def run(self) -> int:
        if self.onnx:
            if self.model:
                raise GhnlibError('give either MODEL or --onnx FILE, not both')
            graph = from_onnx(self.onnx, strict=self.strict,
                              ve_cutoff=self.ve_cutoff)
            title, total = self.onnx, None
        elif self.model:
            model, natural_shape = resolve_model(self.model)
            shape = self.input_shape or natural_shape or (1, 3, 32, 32)
            graph = to_graph(model, input_shape=shape, strict=self.strict,
                             ve_cutoff=self.ve_cutoff)
            title = f'{self.model} ({type(model).__name__}, input {shape})'
            total = sum(p.numel() for p in model.parameters()
                        if p.requires_grad)
        else:
            raise GhnlibError('give a MODEL to convert or --onnx FILE')

        print(title)
        print(graph.summary())
        if total is not None:
            share = graph.num_params / total if total else 1.0
            print(f'parameter elements mapped / total: {graph.num_params:,} '
                  f'/ {total:,} ({share:.1%})')
        if self.png:
            draw_graph(graph, self.png)
            print(f'drawing written to {self.png}')
        if self.save:
            graph.save(self.save)
            print(f'graph written to {self.save}')
        return 0
