r"""A convolutional VAE of :math:`k \times k` kernel slices."""
import math
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ['KernelVAE', 'check_slices']


def check_slices(x: Tensor, kernel_size: int, owner: str) -> Tensor:
    r"""Checks that :obj:`x` is a float batch of :math:`k \times k` slices.

    Args:
        x (Tensor): The slices, :math:`[B, k, k]`.
        kernel_size (int): The expected :math:`k`.
        owner (str): Who asks, named in the error message.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f'{owner} expects the slices as a tensor of shape '
                         f'[B, {kernel_size}, {kernel_size}], got '
                         f'{type(x).__name__}; convert with torch.as_tensor')
    if x.dim() != 3 or x.shape[1:] != (kernel_size, kernel_size):
        raise ValueError(
            f'{owner} expects slices of shape [B, {kernel_size}, '
            f'{kernel_size}], got {list(x.shape)}; reshape a convolution '
            f'weight with weight.reshape(-1, {kernel_size}, {kernel_size}) '
            f'or build the model with kernel_size={x.shape[-1]}')
    if not x.is_floating_point():
        raise ValueError(f'{owner} expects floating-point slices, got '
                         f'{x.dtype}; convert them with x.float()')
    return x


def _check_count(n: int, owner: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f'{owner}.sample expects a positive integer number '
                         f'of samples, got {n!r}')
    return n


class KernelVAE(nn.Module):
    r"""A variational autoencoder of :math:`k \times k` convolution kernel
    slices, as in the `"Deep Weight Prior" <https://arxiv.org/abs/1810.06943>`_
    paper (Atanov et al., 2019) and the local initialisation of `"From
    Pointwise to Powerhouse: Initialising Neural Networks with Generative
    Models" <https://arxiv.org/abs/2310.16695>`_ (Harder et al., 2023).

    The encoder is two :math:`3 \times 3` convolutions with padding 1 and
    ELU, which keep the :math:`k \times k` grid, then a :math:`k \times k`
    convolution to the :math:`1 \times 1` posterior parameters. The decoder
    mirrors it: a :math:`k \times k` transposed convolution from the
    :math:`1 \times 1` code back to the grid, then two :math:`3 \times 3`
    convolutions with padding 1 and ELU, so every :math:`k \ge 1` works. The
    likelihood is a Gaussian around the decoder mean with a learned
    log-variance per pixel (shared across slices), started at 0: unit
    variance, the variance of standardised slices. The model maximises the
    evidence lower bound

    .. math::
        \mathcal{L}(\mathbf{x}) = \mathbb{E}_{q(\mathbf{z} | \mathbf{x})}
        \left[ \log \mathcal{N}(\mathbf{x} \,|\, \mu_\theta(\mathbf{z}),
        \mathrm{diag}(\sigma^2)) \right] - \mathrm{KL}\left[
        \mathcal{N}(\mu_\phi(\mathbf{x}), \mathrm{diag}(
        \sigma_\phi^2(\mathbf{x}))) \,\|\, \mathcal{N}(\mathbf{0},
        \mathbf{I}) \right]

    with one reparameterised sample of :math:`\mathbf{z}`; :meth:`loss`
    returns :math:`-\mathcal{L}` averaged over the slices.

    Args:
        kernel_size (int, optional): The slice size :math:`k`.
            (default: :obj:`3`)
        hidden_channels (int, optional): Channels of the hidden
            convolutions. (default: :obj:`32`)
        latent_channels (int, optional): Size of :math:`\mathbf{z}`.
            (default: :obj:`5`)

    Shapes:
        - **input:** slices :math:`[B, k, k]`, indexed (row, column) as
          :obj:`weight.reshape(-1, k, k)` leaves them
        - **output:** reconstructions :math:`[B, k, k]`; :meth:`sample`
          gives :math:`[n, k, k]`
    """
    def __init__(self, kernel_size: int = 3, hidden_channels: int = 32,
                 latent_channels: int = 5):
        super().__init__()
        for name, value in (('kernel_size', kernel_size),
                            ('hidden_channels', hidden_channels),
                            ('latent_channels', latent_channels)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f'KernelVAE expects {name} to be a positive '
                                 f'integer, got {value!r}')
        self.kernel_size = kernel_size
        self.hidden_channels = hidden_channels
        self.latent_channels = latent_channels

        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden_channels, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(hidden_channels, 2 * latent_channels, kernel_size),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent_channels, hidden_channels, kernel_size),
            nn.ELU(),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(hidden_channels, 1, 3, padding=1),
        )
        self.decoder_logvar = nn.Parameter(
            torch.empty(kernel_size, kernel_size))
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.reset_parameters()
        nn.init.zeros_(self.decoder_logvar)

    @property
    def config(self) -> Dict[str, Any]:
        """The constructor arguments: :obj:`type(m)(**m.config)` rebuilds
        the model."""
        return {'kernel_size': self.kernel_size,
                'hidden_channels': self.hidden_channels,
                'latent_channels': self.latent_channels}

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        r"""The posterior mean and log-variance of slices.

        Shapes: :math:`[B, k, k]` → :math:`([B, L], [B, L])`.
        """
        check_slices(x, self.kernel_size, 'KernelVAE.encode')
        params = self.encoder(x.unsqueeze(1)).flatten(1)
        mu, logvar = params.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        r"""The likelihood mean of latent codes.

        Shapes: :math:`[B, L]` → :math:`[B, k, k]`.
        """
        if z.dim() != 2 or z.size(1) != self.latent_channels:
            raise ValueError(f'KernelVAE.decode expects codes of shape '
                             f'[B, {self.latent_channels}], got '
                             f'{list(z.shape)}')
        z = z.view(z.size(0), self.latent_channels, 1, 1)
        return self.decoder(z).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        r"""Reconstructs slices from their posterior means (no sampling, so
        it is deterministic).

        Shapes: :math:`[B, k, k]` → :math:`[B, k, k]`.
        """
        mu, _ = self.encode(x)
        return self.decode(mu)

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        r"""The negative ELBO per slice, estimated with one reparameterised
        sample drawn from the global random number generator.

        Returns:
            The mean negative ELBO (a scalar) and detached means of its two
            terms: :obj:`'reconstruction'` (the Gaussian negative
            log-likelihood, in nats per slice) and :obj:`'kl'`.
        """
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mean = self.decode(z)
        var_logvar = self.decoder_logvar
        reconstruction = 0.5 * ((x - mean).pow(2) * torch.exp(-var_logvar)
                                + var_logvar + math.log(2 * math.pi))
        reconstruction = reconstruction.flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        loss = (reconstruction + kl).mean()
        return loss, {'reconstruction': reconstruction.mean().detach(),
                      'kl': kl.mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None,
               likelihood_noise: bool = False) -> Tensor:
        r"""Draws :math:`\mathbf{z} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})`
        and returns the decoder means.

        The means are the default because the likelihood noise is white,
        per-pixel noise that carries none of the spatial structure the model
        learned; it only inflates the variance towards that of the data.

        Args:
            n (int): Number of slices.
            generator (torch.Generator, optional): The source of randomness;
                the same seed gives the same slices. (default: :obj:`None`)
            likelihood_noise (bool, optional): Add a draw from the Gaussian
                likelihood to the means. (default: :obj:`False`)

        Shapes: :math:`[n, k, k]`.
        """
        _check_count(n, 'KernelVAE')
        device, dtype = self.decoder_logvar.device, self.decoder_logvar.dtype
        draw_device = generator.device if generator is not None else device
        z = torch.randn(n, self.latent_channels, generator=generator,
                        device=draw_device, dtype=dtype).to(device)
        slices = self.decode(z)
        if likelihood_noise:
            noise = torch.randn(slices.shape, generator=generator,
                                device=draw_device, dtype=dtype).to(device)
            slices = slices + noise * torch.exp(0.5 * self.decoder_logvar)
        return slices

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(kernel_size={self.kernel_size}, '
                f'hidden_channels={self.hidden_channels}, '
                f'latent_channels={self.latent_channels})')
