r"""Data-dependent output scaling of predicted weights: each weight layer's
output brought to unit standard deviation on a batch."""
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ['SCALED_LAYERS', 'output_scales', 'apply_output_scales',
           'scale_outputs_']

#: The layers whose outputs are scaled: a convolution or linear layer (and
#: the output projection of :class:`torch.nn.MultiheadAttention`) scales as
#: its weight and bias do.
SCALED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                 nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
                 nn.MultiheadAttention)


def _scaled_names(module: nn.Module, path: str) -> Sequence[str]:
    prefix = f'{path}.' if path else ''
    if isinstance(module, nn.MultiheadAttention):
        return [f'{prefix}out_proj.weight', f'{prefix}out_proj.bias']
    return [f'{prefix}weight', f'{prefix}bias']


@torch.no_grad()
def output_scales(model: nn.Module, parameters: Dict[str, Tensor],
                  inputs: Union[Tensor, Sequence[Tensor]], *,
                  eps: float = 1e-8) -> Dict[str, Tensor]:
    r"""The factor of every weight layer's parameters that gives its output
    unit standard deviation on :obj:`inputs`, when :obj:`model` runs with
    :obj:`parameters` (as :func:`torch.func.functional_call` would):

    .. math::
        s_l = 1 / \mathrm{std}\big(f_l(\mathbf{h}_{l-1})\big),

    measured in one forward pass in which every layer already sees the
    scaled outputs of the layers before it (layer-sequential unit variance,
    as LSUV, Mishkin and Matas 2016). Multiplying a layer's weight and bias
    by :math:`s_l` (:func:`apply_output_scales`) gives exactly that pass. A
    graph hypernetwork predicts weights whose scale suits normalised
    networks; in one without batch norm (or with residual sums that add
    variance), the logits can otherwise be orders of magnitude too large.
    A module called more than once keeps the factor of its first call.

    Args:
        model (nn.Module): The network (its own parameter values are not
            used where :obj:`parameters` has a name).
        parameters (Dict[str, Tensor]): Parameters by name, as
            :meth:`GraphHyperNetwork.predict` returns them.
        inputs (Tensor or Sequence[Tensor]): A batch.
        eps (float, optional): Smallest standard deviation.
            (default: :obj:`1e-8`)

    Returns:
        Dict[str, Tensor]: A scalar factor per parameter name (weights and
        biases of the scaled layers that exist in :obj:`parameters`).
    """
    factors: Dict[str, Tensor] = {}
    by_module: Dict[nn.Module, Tensor] = {}
    handles = []

    def hook(module, args, output):
        first = output[0] if isinstance(output, tuple) else output
        if module not in by_module:
            std = first.detach().float().std()
            by_module[module] = 1.0 / torch.clamp(std, min=eps)
        factor = by_module[module].to(first.dtype)
        if isinstance(output, tuple):
            return (output[0] * factor, ) + tuple(output[1:])
        return output * factor

    paths = {}
    for path, module in model.named_modules():
        if isinstance(module, SCALED_LAYERS):
            paths[module] = path
            handles.append(module.register_forward_hook(hook))
    try:
        if isinstance(inputs, Tensor):
            inputs = (inputs, )
        functional_call(model, parameters, tuple(inputs))
    finally:
        for handle in handles:
            handle.remove()
    for module, factor in by_module.items():
        for name in _scaled_names(module, paths[module]):
            if name in parameters and name not in factors:
                factors[name] = factor
    return factors


def apply_output_scales(parameters: Dict[str, Tensor],
                        factors: Dict[str, Tensor],
                        out: Optional[Dict[str, Tensor]] = None
                        ) -> Dict[str, Tensor]:
    r""":obj:`parameters` with every tensor named in :obj:`factors`
    multiplied by its factor (differentiable in :obj:`parameters`; the
    factors are constants).

    Args:
        parameters (Dict[str, Tensor]): Parameters by name.
        factors (Dict[str, Tensor]): From :func:`output_scales`.
        out (Dict[str, Tensor], optional): Tensors to write the result into
            in place, by name (for instance a model's parameters, under
            :func:`torch.no_grad`). (default: :obj:`None`, new tensors)
    """
    if out is not None:
        for name, factor in factors.items():
            out[name].mul_(factor.to(out[name].dtype))
        return out
    return {name: value * factors[name].to(value.dtype) if name in factors
            else value for name, value in parameters.items()}


@torch.no_grad()
def scale_outputs_(model: nn.Module,
                   inputs: Union[Tensor, Sequence[Tensor]]) -> nn.Module:
    r"""Scales :obj:`model`'s own weight layers in place so that each one's
    output has unit standard deviation on :obj:`inputs`
    (:func:`output_scales`), and returns it. Frozen parameters
    (:obj:`requires_grad=False`) are left as they are.

    Args:
        model (nn.Module): An initialised network, *e.g.*, after
            :meth:`GraphHyperNetwork.init_`.
        inputs (Tensor or Sequence[Tensor]): A batch of its inputs.
    """
    own = dict(model.named_parameters())
    factors = output_scales(model, own, inputs)
    trainable = {name: f for name, f in factors.items()
                 if own[name].requires_grad}
    apply_output_scales(own, trainable, out=own)
    return model
