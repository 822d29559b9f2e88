r"""A vector-quantised VAE of :math:`k \times k` kernel slices."""
import math
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ghnlib.local.code_prior import CodePrior
from ghnlib.local.kernel_vae import check_slices

__all__ = ['KernelVQVAE']


class KernelVQVAE(nn.Module):
    r"""A vector-quantised variational autoencoder of :math:`k \times k`
    convolution kernel slices, from `"Neural Discrete Representation
    Learning" <https://arxiv.org/abs/1711.00937>`_ (van den Oord et al.,
    2017) as used for the local initialisation of `"From Pointwise to
    Powerhouse: Initialising Neural Networks with Generative Models"
    <https://arxiv.org/abs/2310.16695>`_ (Harder et al., 2023).

    The encoder maps a slice to a :math:`k \times k` grid of
    :math:`D`-vectors :math:`z_e(\mathbf{x})` (nine vectors of size four for
    the paper's :math:`3 \times 3` slices), each replaced by its nearest
    codebook vector :math:`e_c`, :math:`c \in \{0, \dots, K - 1\}`; the
    decoder maps the quantised grid :math:`z_q(\mathbf{x})` back to a slice.
    The loss is

    .. math::
        \mathcal{L} = \frac{1}{k^2} \| \mathbf{x} - \hat{\mathbf{x}} \|^2
        + \frac{1}{k^2 D} \left( \| \mathrm{sg}[z_e(\mathbf{x})] - z_q \|^2
        + \beta \, \| z_e(\mathbf{x}) - \mathrm{sg}[z_q] \|^2 \right),

    with straight-through gradients from :math:`z_q` to :math:`z_e` and the
    codebook learned by the second term (the original updates, no moving
    averages). Code vectors start uniform in :math:`\pm\sqrt{3 / D}`.

    The paper's encoder is three :math:`3 \times 3` convolutions "with a
    padding of two", ELU after the first two; taken literally that grows a
    :math:`3 \times 3` slice to :math:`9 \times 9`, not the nine vectors it
    quantises. Here only the first convolution has padding 2 (a full
    convolution, :math:`k \to k + 2`, so border pixels meet every kernel
    tap), the second has none (:math:`k + 2 \to k`) and the third padding 1
    (:math:`k \to k`). The decoder mirrors it: a :math:`3 \times 3`
    convolution with padding 1 and ELU, then :math:`3 \times 3` transposed
    convolutions with padding 0 (:math:`k \to k + 2`) and 2
    (:math:`k + 2 \to k`), with an ELU between them, which the paper does
    not mention but without which they collapse into one linear map. Any
    :math:`k \ge 1` works. Codes are flattened in raster order: position
    :math:`i k + j` is row :math:`i`, column :math:`j` of the slice.

    :meth:`sample` draws codes uniformly, or from a
    :class:`~ghnlib.local.code_prior.CodePrior` (the paper's VQVAE*) passed
    in or attached as :obj:`model.prior`; an attached prior is saved with
    the model's state and rebuilt from :obj:`config`.

    Args:
        kernel_size (int, optional): The slice size :math:`k`.
            (default: :obj:`3`)
        hidden_channels (int, optional): Channels of the hidden
            convolutions. (default: :obj:`16`)
        num_embeddings (int, optional): The codebook size :math:`K`.
            (default: :obj:`128`)
        embedding_dim (int, optional): The code vector size :math:`D`.
            (default: :obj:`4`)
        commitment_cost (float, optional): :math:`\beta`.
            (default: :obj:`0.25`)
        prior_config (dict, optional): The :obj:`config` of a
            :class:`~ghnlib.local.code_prior.CodePrior` to attach as
            :obj:`prior`. (default: :obj:`None`)

    Shapes:
        - **input:** slices :math:`[B, k, k]`, indexed (row, column) as
          :obj:`weight.reshape(-1, k, k)` leaves them
        - **output:** reconstructions :math:`[B, k, k]`; :meth:`encode`
          gives codes :math:`[B, k^2]`; :meth:`sample` gives
          :math:`[n, k, k]`
    """
    def __init__(self, kernel_size: int = 3, hidden_channels: int = 16,
                 num_embeddings: int = 128, embedding_dim: int = 4,
                 commitment_cost: float = 0.25,
                 prior_config: Optional[Dict[str, Any]] = None):
        super().__init__()
        for name, value in (('kernel_size', kernel_size),
                            ('hidden_channels', hidden_channels),
                            ('num_embeddings', num_embeddings),
                            ('embedding_dim', embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'KernelVQVAE expects {name} to be a '
                                 f'positive integer, got {value!r}')
        if not isinstance(commitment_cost, (int, float)) \
                or commitment_cost < 0:
            raise ValueError(f'KernelVQVAE expects commitment_cost >= 0, got '
                             f'{commitment_cost!r}')
        self.kernel_size = kernel_size
        self.hidden_channels = hidden_channels
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.commitment_cost = float(commitment_cost)

        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden_channels, 3, padding=2),
            nn.ELU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3),
            nn.ELU(),
            nn.Conv2d(hidden_channels, embedding_dim, 3, padding=1),
        )
        self.codebook = nn.Embedding(num_embeddings, embedding_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(embedding_dim, hidden_channels, 3, padding=1),
            nn.ELU(),
            nn.ConvTranspose2d(hidden_channels, hidden_channels, 3),
            nn.ELU(),
            nn.ConvTranspose2d(hidden_channels, 1, 3, padding=2),
        )
        self.prior = None
        if prior_config is not None:
            self.prior = CodePrior(**prior_config)
            self._check_prior(self.prior)
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.reset_parameters()
        # Unit expected squared norm per code vector, the variance-scaling
        # start of the authors' Sonnet code; the +-1/K of common PyTorch
        # ports leaves the codes far inside the encoder's outputs, so a few
        # codes take everything and the VQ terms explode for hundreds of
        # steps before training recovers.
        bound = math.sqrt(3.0 / self.embedding_dim)
        nn.init.uniform_(self.codebook.weight, -bound, bound)
        if self.prior is not None:
            self.prior.reset_parameters()

    @property
    def num_positions(self) -> int:
        """Codes per slice, :math:`k^2`."""
        return self.kernel_size ** 2

    @property
    def config(self) -> Dict[str, Any]:
        """The constructor arguments, the attached prior's included:
        :obj:`type(m)(**m.config)` rebuilds the model."""
        return {'kernel_size': self.kernel_size,
                'hidden_channels': self.hidden_channels,
                'num_embeddings': self.num_embeddings,
                'embedding_dim': self.embedding_dim,
                'commitment_cost': self.commitment_cost,
                'prior_config': (None if self.prior is None
                                 else dict(self.prior.config))}

    def _check_prior(self, prior) -> CodePrior:
        if not isinstance(prior, CodePrior):
            raise ValueError(f'KernelVQVAE expects a CodePrior as prior, got '
                             f'{type(prior).__name__}')
        if prior.num_positions != self.num_positions \
                or prior.num_embeddings != self.num_embeddings:
            raise ValueError(
                f'KernelVQVAE with kernel_size={self.kernel_size} and '
                f'num_embeddings={self.num_embeddings} needs a '
                f'CodePrior(num_positions={self.num_positions}, '
                f'num_embeddings={self.num_embeddings}), got {prior!r}')
        return prior

    def _encode_grid(self, x: Tensor) -> Tensor:
        check_slices(x, self.kernel_size, 'KernelVQVAE')
        grid = self.encoder(x.unsqueeze(1))
        # [B, D, k, k] -> [B, k*k, D]: row-major positions, as encode reports
        return grid.flatten(2).transpose(1, 2)

    def _nearest_codes(self, vectors: Tensor) -> Tensor:
        codebook = self.codebook.weight
        distances = (vectors.pow(2).sum(-1, keepdim=True)
                     - 2 * vectors @ codebook.t()
                     + codebook.pow(2).sum(-1))
        return distances.argmin(-1)

    def _decode_vectors(self, vectors: Tensor) -> Tensor:
        k = self.kernel_size
        grid = vectors.transpose(1, 2).reshape(-1, self.embedding_dim, k, k)
        return self.decoder(grid).squeeze(1)

    def encode(self, x: Tensor) -> Tensor:
        r"""The code of every position of slices, in raster order.

        Shapes: :math:`[B, k, k]` → :math:`[B, k^2]` (long).
        """
        return self._nearest_codes(self._encode_grid(x))

    def decode_codes(self, codes: Tensor) -> Tensor:
        r"""Slices from codes in raster order.

        Shapes: :math:`[B, k^2]` → :math:`[B, k, k]`.
        """
        if codes.dim() != 2 or codes.size(1) != self.num_positions:
            raise ValueError(f'KernelVQVAE.decode_codes expects codes of '
                             f'shape [B, {self.num_positions}], got '
                             f'{list(codes.shape)}')
        if codes.is_floating_point() or codes.min() < 0 \
                or codes.max() >= self.num_embeddings:
            raise ValueError(f'KernelVQVAE.decode_codes expects integer codes '
                             f'in [0, {self.num_embeddings}), got '
                             f'{codes.dtype} values in [{codes.min()}, '
                             f'{codes.max()}]')
        return self._decode_vectors(self.codebook(codes.long()))

    def _quantize(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        encoded = self._encode_grid(x)
        codes = self._nearest_codes(encoded)
        quantized = self.codebook(codes)
        vq_loss = (F.mse_loss(quantized, encoded.detach())
                   + self.commitment_cost
                   * F.mse_loss(encoded, quantized.detach()))
        # straight-through: the decoder's gradient w.r.t. the codes is
        # passed to the encoder output unchanged
        quantized = encoded + (quantized - encoded).detach()
        return quantized, codes, vq_loss

    def forward(self, x: Tensor) -> Tensor:
        r"""Reconstructs slices through the quantised codes.

        Shapes: :math:`[B, k, k]` → :math:`[B, k, k]`.
        """
        quantized, _, _ = self._quantize(x)
        return self._decode_vectors(quantized)

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        r"""The VQ-VAE loss of slices.

        Returns:
            The scalar loss and detached statistics: :obj:`'reconstruction'`
            (mean squared error per pixel), :obj:`'vq'` (codebook plus
            weighted commitment loss) and :obj:`'perplexity'` (the
            exponentiated entropy of the batch's code usage, between 1 and
            :math:`K`).
        """
        quantized, codes, vq_loss = self._quantize(x)
        reconstruction = F.mse_loss(self._decode_vectors(quantized), x)
        usage = torch.bincount(codes.flatten(),
                               minlength=self.num_embeddings).float()
        usage = usage / usage.sum()
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return reconstruction + vq_loss, {
            'reconstruction': reconstruction.detach(),
            'vq': vq_loss.detach(),
            'perplexity': perplexity}

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               prior: Optional[CodePrior] = None) -> Tensor:
        r"""Draws codes and decodes them.

        Args:
            n (int): Number of slices.
            generator (torch.Generator, optional): The source of randomness;
                the same seed gives the same slices. (default: :obj:`None`)
            prior (CodePrior, optional): The code distribution; without it
                the attached :obj:`self.prior` is used, and without that
                codes are uniform over the codebook. (default: :obj:`None`)

        Shapes: :math:`[n, k, k]`.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'KernelVQVAE.sample expects a positive integer '
                             f'number of samples, got {n!r}')
        prior = prior if prior is not None else self.prior
        device = self.codebook.weight.device
        if prior is not None:
            codes = self._check_prior(prior).sample(n, generator=generator)
        else:
            draw_device = generator.device if generator is not None \
                else device
            codes = torch.randint(self.num_embeddings,
                                  (n, self.num_positions),
                                  generator=generator, device=draw_device)
        return self.decode_codes(codes.to(device))

    def __repr__(self) -> str:
        prior = '' if self.prior is None else ', prior=True'
        return (f'{self.__class__.__name__}(kernel_size={self.kernel_size}, '
                f'hidden_channels={self.hidden_channels}, '
                f'num_embeddings={self.num_embeddings}, '
                f'embedding_dim={self.embedding_dim}{prior})')
