import torch
import torch.nn as nn
from torch.func import functional_call

from ghnlib.nn.output_scale import (apply_output_scales, output_scales,
                                    scale_outputs_)


class Residual(nn.Module):
    """No normalisation and a residual sum: activations grow with depth."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1)
                                   for _ in range(3))
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = self.conv1(x)
        for conv in self.convs:
            h = h + torch.relu(conv(h))
        tokens = h.flatten(2).transpose(1, 2)
        tokens = tokens + self.attn(tokens, tokens, tokens)[0]
        return self.fc(tokens.mean(1))


def big_parameters(model):
    generator = torch.Generator().manual_seed(0)
    return {name: torch.randn(p.shape, generator=generator) * 3
            for name, p in model.named_parameters()}


def test_every_layer_output_has_unit_std_after_scaling():
    torch.manual_seed(0)
    model, x = Residual(), torch.randn(16, 3, 6, 6)
    params = big_parameters(model)
    factors = output_scales(model, params, x)
    assert set(factors) == {n for n in params if not n.startswith(
        'attn.in_proj')}
    scaled = apply_output_scales(params, factors)
    stds = {}
    hooks = [m.register_forward_hook(
        lambda m, a, out, path=path: stds.__setitem__(
            path, (out[0] if isinstance(out, tuple) else out).std().item()))
        for path, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MultiheadAttention))
        and path != 'attn.out_proj']
    functional_call(model, scaled, (x, ))
    for hook in hooks:
        hook.remove()
    assert len(stds) == 6
    for path, std in stds.items():
        assert abs(std - 1) < 1e-4, (path, std)
    unscaled = functional_call(model, params, (x, ))
    assert unscaled.std() > 10  # the problem the scaling solves


def test_gradients_reach_every_predicted_tensor_through_the_scaling():
    model, x = Residual(), torch.randn(4, 3, 6, 6)
    params = {k: v.requires_grad_() for k, v in big_parameters(model).items()}
    scaled = apply_output_scales(params, output_scales(model, params, x))
    functional_call(model, scaled, (x, )).logsumexp(-1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for name, p in params.items())


def test_in_place_scaling_keeps_frozen_parameters():
    torch.manual_seed(0)
    model, x = Residual(), torch.randn(8, 3, 6, 6)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(big_parameters(model)[name])
    model.fc.weight.requires_grad_(False)
    frozen = model.fc.weight.detach().clone()
    conv = model.conv1.weight.detach().clone()
    scale_outputs_(model, x)
    assert torch.equal(model.fc.weight, frozen)
    assert not torch.allclose(model.conv1.weight, conv)
    assert abs(model.conv1(x).std().item() - 1) < 1e-4
