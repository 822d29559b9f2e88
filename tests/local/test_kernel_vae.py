import json
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ghnlib.local.fit import PAPER_VAE_RECIPE, VAE_RECIPE, fit_kernel_model
from ghnlib.local.kernel_vae import KernelVAE
from kernel_patterns import horizontal_to_vertical, oriented_weight

# The negative log-likelihood of standardised 3x3 slices under N(0, I).
UNIT_GAUSSIAN_NLL = 9 * 0.5 * (1 + math.log(2 * math.pi))


@pytest.mark.parametrize('kernel_size', [1, 3, 5])
def test_kernel_vae_shapes(kernel_size):
    model = KernelVAE(kernel_size=kernel_size, hidden_channels=8,
                      latent_channels=2)
    x = torch.randn(7, kernel_size, kernel_size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (7, 2)
    assert model.decode(mu).shape == (7, kernel_size, kernel_size)
    assert model(x).shape == (7, kernel_size, kernel_size)
    assert model.sample(4).shape == (4, kernel_size, kernel_size)
    loss, stats = model.loss(x)
    assert loss.dim() == 0 and set(stats) == {'reconstruction', 'kl'}
    assert not stats['kl'].requires_grad
    assert str(model) == (f'KernelVAE(kernel_size={kernel_size}, '
                          f'hidden_channels=8, latent_channels=2)')


def test_kernel_vae_rejects_bad_input():
    model = KernelVAE()
    with pytest.raises(ValueError, match=r'\[B, 3, 3\].*kernel_size=5'):
        model.encode(torch.randn(4, 5, 5))
    with pytest.raises(ValueError, match='floating-point'):
        model.loss(torch.zeros(4, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r'reshape\(-1, 3, 3\)'):
        model(torch.randn(4, 1, 3, 3))
    with pytest.raises(ValueError, match=r'\[B, 5\]'):
        model.decode(torch.randn(4, 3))
    with pytest.raises(ValueError, match='positive integer'):
        model.sample(0)
    with pytest.raises(ValueError, match='latent_channels'):
        KernelVAE(latent_channels=0)


def test_kernel_vae_loss_is_the_negative_elbo():
    torch.manual_seed(0)
    model = KernelVAE()
    with torch.no_grad():
        model.decoder_logvar.copy_(0.3 * torch.randn(3, 3))
    x = torch.randn(16, 3, 3)

    torch.manual_seed(1)
    loss, stats = model.loss(x)

    mu, logvar = model.encode(x)
    torch.manual_seed(1)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    likelihood = Normal(model.decode(z), (0.5 * model.decoder_logvar).exp())
    reconstruction = -likelihood.log_prob(x).sum((1, 2))
    kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()),
                       Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    kl = kl.sum(1)
    assert torch.allclose(loss, (reconstruction + kl).mean(), atol=1e-5)
    assert torch.allclose(stats['reconstruction'], reconstruction.mean(),
                          atol=1e-5)
    assert torch.allclose(stats['kl'], kl.mean(), atol=1e-5)


def test_kernel_vae_learns_digit_slices(digit_slices):
    torch.manual_seed(0)
    model = KernelVAE()
    history = fit_kernel_model(model, digit_slices, epochs=40, **VAE_RECIPE)
    assert history['loss'][0] - history['loss'][-1] > 1.5
    # below the best model that ignores correlations between pixels
    assert history['loss'][-1] < UNIT_GAUSSIAN_NLL - 1.0
    assert history['kl'][-1] > 0.5  # the latent code is in use

    model.eval()
    with torch.no_grad():
        error = (model(digit_slices) - digit_slices).pow(2).mean()
    mean_error = (digit_slices - digit_slices.mean(0)).pow(2).mean()
    assert error < 0.5 * mean_error


def test_paper_vae_recipe_collapses_to_the_mean(digit_slices):
    # Documents why VAE_RECIPE drops the paper's weight decay of 1.
    stds = {}
    for name, recipe in (('paper', PAPER_VAE_RECIPE), ('default', VAE_RECIPE)):
        torch.manual_seed(0)
        model = KernelVAE()
        fit_kernel_model(model, digit_slices, epochs=10, **recipe)
        samples = model.sample(500, generator=torch.Generator().manual_seed(0))
        stds[name] = float(samples.std(0).mean())
    assert stds['paper'] < 0.05
    assert stds['default'] > 0.3


def test_kernel_vae_keeps_the_weight_layout():
    weight = oriented_weight()
    slices = weight.view(-1, 3, 3)
    assert horizontal_to_vertical(slices) > 3  # the data, for reference
    torch.manual_seed(0)
    model = KernelVAE()
    fit_kernel_model(model, slices, epochs=40, **VAE_RECIPE)
    model.eval()
    with torch.no_grad():
        reconstruction = model(slices).view_as(weight)
    # every (out, in, row, col) entry comes back where it was
    error = (reconstruction - weight).pow(2).mean()
    transposed_error = (reconstruction - weight.transpose(2, 3)).pow(2).mean()
    assert error < 0.2 * transposed_error
    assert error < 0.1

    samples = model.sample(2000, generator=torch.Generator().manual_seed(0))
    assert horizontal_to_vertical(samples) > 2
    # the bright corner is the top-right one, at (row 0, column 2)
    assert samples.mean(0).argmax() == 2
    corner = samples[:, 0, 2].mean()
    assert torch.allclose(corner, weight[:, :, 0, 2].mean(), atol=0.3)


def test_kernel_vae_sampling_is_seeded_and_survives_a_reload(digit_slices):
    torch.manual_seed(0)
    model = KernelVAE()
    fit_kernel_model(model, digit_slices, epochs=5, **VAE_RECIPE)
    model.eval()

    def draw(m, seed, **kwargs):
        return m.sample(64, generator=torch.Generator().manual_seed(seed),
                        **kwargs)

    first = draw(model, 0)
    assert torch.isfinite(first).all()
    assert torch.equal(first, draw(model, 0))
    assert not torch.allclose(first, draw(model, 1))
    noisy = draw(model, 0, likelihood_noise=True)
    assert torch.allclose((noisy - first).std(), torch.tensor(1.0), atol=0.3)

    config = json.loads(json.dumps(model.config))
    assert config == {'kernel_size': 3, 'hidden_channels': 32,
                      'latent_channels': 5}
    rebuilt = KernelVAE(**config)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    assert torch.equal(draw(rebuilt, 0), first)
