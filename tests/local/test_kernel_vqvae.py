import json

import pytest
import torch
import torch.nn.functional as F

from ghnlib.local.code_prior import CodePrior
from ghnlib.local.fit import (CODE_PRIOR_RECIPE, VQVAE_RECIPE,
                              fit_kernel_model)
from ghnlib.local.kernel_vqvae import KernelVQVAE
from kernel_patterns import horizontal_to_vertical, oriented_weight


@pytest.fixture(scope='module')
def trained(digit_slices):
    """A VQ-VAE fit with the paper's recipe, its history, and a code prior
    fit on its codes."""
    torch.manual_seed(0)
    model = KernelVQVAE()
    history = fit_kernel_model(model, digit_slices, epochs=60,
                               **VQVAE_RECIPE)
    model.eval()
    with torch.no_grad():
        codes = model.encode(digit_slices)
    torch.manual_seed(0)
    prior = CodePrior()
    fit_kernel_model(prior, codes, epochs=10, **CODE_PRIOR_RECIPE)
    prior.eval()
    return model, history, prior


@pytest.mark.parametrize('kernel_size', [1, 3, 5])
def test_kernel_vqvae_shapes(kernel_size):
    model = KernelVQVAE(kernel_size=kernel_size, num_embeddings=16)
    x = torch.randn(7, kernel_size, kernel_size)
    codes = model.encode(x)
    assert codes.shape == (7, kernel_size ** 2)
    assert codes.dtype == torch.long
    assert model.decode_codes(codes).shape == (7, kernel_size, kernel_size)
    assert model(x).shape == (7, kernel_size, kernel_size)
    assert model.sample(4).shape == (4, kernel_size, kernel_size)
    loss, stats = model.loss(x)
    assert loss.dim() == 0
    assert set(stats) == {'reconstruction', 'vq', 'perplexity'}
    assert 1.0 <= float(stats['perplexity']) <= 16.0 + 1e-4
    assert str(model) == (f'KernelVQVAE(kernel_size={kernel_size}, '
                          f'hidden_channels=16, num_embeddings=16, '
                          f'embedding_dim=4)')


def test_kernel_vqvae_codes_are_nearest_vectors_in_raster_order():
    torch.manual_seed(0)
    model = KernelVQVAE()
    x = torch.randn(32, 3, 3)
    with torch.no_grad():
        # code vectors near the encoder's outputs, so that many are hit
        others = model.encoder(torch.randn(15, 1, 3, 3)).permute(0, 2, 3, 1)
        model.codebook.weight.copy_(others.reshape(-1, 4)[:128])
        codes = model.encode(x)
        grid = model.encoder(x.unsqueeze(1))  # [B, D, 3, 3]
    for row in range(3):
        for col in range(3):
            distances = torch.cdist(grid[:, :, row, col],
                                    model.codebook.weight)
            assert torch.equal(codes[:, 3 * row + col],
                               distances.argmin(1))
    assert codes.unique().numel() > 10

    # decoding puts code i * 3 + j back at (row i, column j)
    vectors = model.codebook(codes).view(32, 3, 3, 4).permute(0, 3, 1, 2)
    assert torch.allclose(model.decode_codes(codes),
                          model.decoder(vectors).squeeze(1))


def test_kernel_vqvae_straight_through_gradients():
    torch.manual_seed(0)
    model = KernelVQVAE()
    loss, _ = model.loss(torch.randn(64, 3, 3))
    loss.backward()
    for name in ('encoder.0.weight', 'codebook.weight', 'decoder.4.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name

    # without the commitment/codebook terms the encoder still learns,
    # through the straight-through copy of the decoder's gradient
    model.zero_grad()
    x = torch.randn(64, 3, 3)
    F.mse_loss(model(x), x).backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.codebook.weight.grad is None


def test_kernel_vqvae_rejects_bad_input():
    model = KernelVQVAE()
    with pytest.raises(ValueError, match=r'\[B, 3, 3\]'):
        model.encode(torch.randn(4, 9))
    with pytest.raises(ValueError, match=r'\[B, 9\]'):
        model.decode_codes(torch.zeros(4, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\[0, 128\)'):
        model.decode_codes(torch.full((4, 9), 128))
    with pytest.raises(ValueError, match='num_positions=9'):
        model.sample(4, prior=CodePrior(num_positions=4))
    with pytest.raises(ValueError, match='num_embeddings=128'):
        model.sample(4, prior=CodePrior(num_embeddings=64))
    with pytest.raises(ValueError, match='commitment_cost'):
        KernelVQVAE(commitment_cost=-1.0)


def test_kernel_vqvae_learns_digit_slices(trained, digit_slices):
    model, history, _ = trained
    assert history['loss'][-1] < 0.5 * history['loss'][0]
    assert history['reconstruction'][-1] < 0.25 * history['reconstruction'][0]
    assert history['perplexity'][-1] > 8

    with torch.no_grad():
        codes = model.encode(digit_slices)
        assert codes.shape == (len(digit_slices), 9)
        assert codes.min() >= 0 and codes.max() < 128
        assert torch.allclose(model.decode_codes(codes), model(digit_slices),
                              atol=1e-5)
        error = (model(digit_slices) - digit_slices).pow(2).mean()
    mean_error = (digit_slices - digit_slices.mean(0)).pow(2).mean()
    assert error < 0.25 * mean_error


def test_kernel_vqvae_sampling(trained):
    model, _, prior = trained

    def draw(seed, **kwargs):
        return model.sample(256, generator=torch.Generator().manual_seed(seed),
                            **kwargs)

    for kwargs in ({}, {'prior': prior}):
        samples = draw(0, **kwargs)
        assert samples.shape == (256, 3, 3)
        assert torch.isfinite(samples).all()
        assert torch.equal(samples, draw(0, **kwargs))
        assert not torch.allclose(samples, draw(1, **kwargs))
    assert not torch.allclose(draw(0), draw(0, prior=prior))

    assert model.prior is None
    model.prior = prior
    try:
        assert torch.equal(draw(0), draw(0, prior=prior))
    finally:
        model.prior = None


def test_kernel_vqvae_keeps_the_weight_layout():
    weight = oriented_weight()
    slices = weight.view(-1, 3, 3)
    torch.manual_seed(0)
    model = KernelVQVAE()
    fit_kernel_model(model, slices, epochs=30, **VQVAE_RECIPE)
    model.eval()
    with torch.no_grad():
        reconstruction = model(slices).view_as(weight)
        codes = model.encode(slices)
    error = (reconstruction - weight).pow(2).mean()
    transposed_error = (reconstruction - weight.transpose(2, 3)).pow(2).mean()
    assert error < 0.2 * transposed_error

    torch.manual_seed(0)
    prior = CodePrior()
    fit_kernel_model(prior, codes, epochs=10, **CODE_PRIOR_RECIPE)
    samples = model.sample(2000, generator=torch.Generator().manual_seed(0),
                           prior=prior)
    assert horizontal_to_vertical(samples) > 2
    assert samples.mean(0).argmax() == 2  # the top-right corner


def test_kernel_vqvae_with_prior_survives_a_reload(trained):
    model, _, prior = trained
    model.prior = prior
    try:
        config = json.loads(json.dumps(model.config))
        state = model.state_dict()
        first = model.sample(64, generator=torch.Generator().manual_seed(0))
    finally:
        model.prior = None
    assert config['prior_config'] == {'num_positions': 9,
                                      'num_embeddings': 128,
                                      'hidden_channels': 64}
    assert any(key.startswith('prior.') for key in state)

    rebuilt = KernelVQVAE(**config)
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    assert repr(rebuilt).endswith('prior=True)')
    again = rebuilt.sample(64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, first)
