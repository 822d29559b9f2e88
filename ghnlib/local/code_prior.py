r"""An autoregressive prior over the discrete codes of a VQ-VAE."""
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['CodePrior']


class CodePrior(nn.Module):
    r"""An autoregressive model of the code grid of a
    :class:`~ghnlib.local.kernel_vqvae.KernelVQVAE`, the role the PixelCNN
    plays in `"Neural Discrete Representation Learning"
    <https://arxiv.org/abs/1711.00937>`_ (van den Oord et al., 2017) and in
    the VQVAE* of `"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_ (Harder et al., 2023).

    The :math:`P = k^2` positions are ordered in raster order (row by row,
    as :meth:`KernelVQVAE.encode` flattens them) and factorised by the chain
    rule

    .. math::
        p(\mathbf{c}) = \prod_{i=1}^{P} p(c_i \mid c_{<i}),

    each conditional a softmax over the :math:`K` codes. With nine positions
    a PixelCNN's local receptive field buys nothing, so the conditionals
    come from a masked MLP in the manner of `MADE
    <https://arxiv.org/abs/1502.03509>`_ (Germain et al., 2015): every
    (position, code) pair has an embedding of size :math:`H`; block
    :math:`i` of the first hidden layer sees the embeddings of the positions
    :math:`j < i`, block :math:`i` of the second hidden layer sees the
    blocks :math:`j \le i` of the first (both with ELU), and a linear head
    per position maps block :math:`i` to the logits of :math:`c_i`. The
    first conditional is therefore a learned marginal.

    Args:
        num_positions (int, optional): :math:`P`, the codes per slice.
            (default: :obj:`9`)
        num_embeddings (int, optional): :math:`K`, the codebook size.
            (default: :obj:`128`)
        hidden_channels (int, optional): :math:`H`, the width per position.
            (default: :obj:`64`)

    Shapes:
        - **input:** codes :math:`[B, P]` (long, in :math:`[0, K)`)
        - **output:** :meth:`logits` :math:`[B, P, K]`, :meth:`log_prob`
          :math:`[B]`, :meth:`sample` :math:`[n, P]`
    """
    def __init__(self, num_positions: int = 9, num_embeddings: int = 128,
                 hidden_channels: int = 64):
        super().__init__()
        for name, value in (('num_positions', num_positions),
                            ('num_embeddings', num_embeddings),
                            ('hidden_channels', hidden_channels)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'CodePrior expects {name} to be a positive '
                                 f'integer, got {value!r}')
        self.num_positions = num_positions
        self.num_embeddings = num_embeddings
        self.hidden_channels = hidden_channels

        P, K, H = num_positions, num_embeddings, hidden_channels
        self.code_embedding = nn.Embedding(P * K, H)
        self.context = nn.Linear(P * H, P * H)
        self.mixing = nn.Linear(P * H, P * H)
        self.head_weight = nn.Parameter(torch.empty(P, K, H))
        self.head_bias = nn.Parameter(torch.empty(P, K))

        block = torch.ones(H, H)
        earlier = torch.ones(P, P).tril(-1)
        self.register_buffer('context_mask', torch.kron(earlier, block),
                             persistent=False)
        self.register_buffer('mixing_mask',
                             torch.kron(torch.ones(P, P).tril(), block),
                             persistent=False)
        self.register_buffer('position_offset', torch.arange(P) * K,
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.code_embedding.weight)
        self.context.reset_parameters()
        self.mixing.reset_parameters()
        bound = self.hidden_channels ** -0.5
        nn.init.uniform_(self.head_weight, -bound, bound)
        nn.init.zeros_(self.head_bias)

    @property
    def config(self) -> Dict[str, Any]:
        """The constructor arguments: :obj:`type(m)(**m.config)` rebuilds
        the model."""
        return {'num_positions': self.num_positions,
                'num_embeddings': self.num_embeddings,
                'hidden_channels': self.hidden_channels}

    def _check_codes(self, codes: Tensor, owner: str) -> Tensor:
        if not isinstance(codes, Tensor) or codes.dim() != 2 \
                or codes.size(1) != self.num_positions:
            shape = list(codes.shape) if isinstance(codes, Tensor) \
                else type(codes).__name__
            raise ValueError(f'CodePrior.{owner} expects codes of shape '
                             f'[B, {self.num_positions}] (one code per '
                             f'position in raster order), got {shape}')
        if codes.is_floating_point() or codes.is_complex() \
                or codes.dtype == torch.bool:
            raise ValueError(f'CodePrior.{owner} expects integer codes, got '
                             f'{codes.dtype}; convert with codes.long()')
        if codes.numel() and (codes.min() < 0
                              or codes.max() >= self.num_embeddings):
            raise ValueError(f'CodePrior.{owner} expects codes in [0, '
                             f'{self.num_embeddings}), got values in '
                             f'[{int(codes.min())}, {int(codes.max())}]; '
                             f'build the prior with the VQ-VAE\'s '
                             f'num_embeddings')
        return codes.long()

    def _logits(self, codes: Tensor) -> Tensor:
        hidden = self.code_embedding(codes + self.position_offset)
        hidden = hidden.flatten(1)
        context = self.context.weight * self.context_mask
        hidden = F.elu(F.linear(hidden, context, self.context.bias))
        mixing = self.mixing.weight * self.mixing_mask
        hidden = F.elu(F.linear(hidden, mixing, self.mixing.bias))
        hidden = hidden.view(-1, self.num_positions, self.hidden_channels)
        return torch.einsum('bph,pkh->bpk', hidden, self.head_weight) \
            + self.head_bias

    def logits(self, codes: Tensor) -> Tensor:
        r"""The unnormalised log-probabilities of :math:`c_i` given
        :math:`c_{<i}` at every position :math:`i` (those at :math:`i` do
        not depend on :math:`c_{\ge i}`).

        Shapes: :math:`[B, P]` → :math:`[B, P, K]`.
        """
        return self._logits(self._check_codes(codes, 'logits'))

    def log_prob(self, codes: Tensor) -> Tensor:
        r"""The log-probability :math:`\log p(\mathbf{c})` of code grids.

        Shapes: :math:`[B, P]` → :math:`[B]`.
        """
        codes = self._check_codes(codes, 'log_prob')
        log_probs = self._logits(codes).log_softmax(-1)
        return log_probs.gather(-1, codes.unsqueeze(-1)).squeeze(-1).sum(-1)

    def loss(self, codes: Tensor) -> Tensor:
        r"""The mean negative log-likelihood of code grids, in nats per
        grid (uniform codes give :math:`P \log K`)."""
        return -self.log_prob(codes).mean()

    @torch.no_grad()
    def sample(self, n: int,
               generator: Optional[torch.Generator] = None) -> Tensor:
        r"""Draws code grids position by position in raster order.

        Args:
            n (int): Number of grids.
            generator (torch.Generator, optional): The source of randomness;
                the same seed gives the same codes. (default: :obj:`None`)

        Shapes: :math:`[n, P]`.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'CodePrior.sample expects a positive integer '
                             f'number of samples, got {n!r}')
        device = self.head_bias.device
        draw_device = generator.device if generator is not None else device
        codes = torch.zeros(n, self.num_positions, dtype=torch.long,
                            device=device)
        for position in range(self.num_positions):
            probs = self._logits(codes)[:, position].softmax(-1)
            drawn = torch.multinomial(probs.to(draw_device), 1,
                                      generator=generator)
            codes[:, position] = drawn.squeeze(1).to(device)
        return codes

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}('
                f'num_positions={self.num_positions}, '
                f'num_embeddings={self.num_embeddings}, '
                f'hidden_channels={self.hidden_channels})')
