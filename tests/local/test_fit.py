import copy

import pytest
import torch
from torch import nn

from ghnlib.errors import GhnlibError
from ghnlib.local.code_prior import CodePrior
from ghnlib.local.fit import (CODE_PRIOR_RECIPE, PAPER_VAE_RECIPE,
                              VAE_RECIPE, VQVAE_RECIPE, fit_kernel_model)
from ghnlib.local.kernel_vae import KernelVAE
from ghnlib.local.kernel_vqvae import KernelVQVAE


def structured_slices(n, seed=0):
    """Slices that are a random multiple of one smooth pattern plus noise."""
    generator = torch.Generator().manual_seed(seed)
    pattern = torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.0, -0.5],
                            [0.0, -0.5, -1.0]])
    scale = torch.randn(n, 1, 1, generator=generator)
    slices = scale * pattern + 0.2 * torch.randn(n, 3, 3, generator=generator)
    return (slices - slices.mean()) / slices.std()


class ConstantGradient(nn.Module):
    """A loss of slope one in its single parameter, which records the
    parameter every time it is evaluated: Adam then moves the parameter by
    exactly the learning rate at each step."""
    def __init__(self):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(()))
        self.seen = []

    def loss(self, batch):
        self.seen.append(float(self.position.detach()))
        return self.position + 0.0 * batch.sum()


class FailsAt(nn.Module):
    """A scalar loss that turns NaN at one step."""
    def __init__(self, step):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.step, self.calls = step, 0

    def loss(self, batch):
        self.calls += 1
        value = self.weight * batch.pow(2).mean()
        return value * float('nan') if self.calls == self.step else value


def test_recipes_hold_the_paper_numbers():
    assert PAPER_VAE_RECIPE == {'lr': 0.01, 'weight_decay': 1.0,
                                'batch_size': 128}
    assert VQVAE_RECIPE == {'lr': 0.01, 'weight_decay': 1e-5,
                            'batch_size': 128}
    assert VAE_RECIPE['lr'] == 0.01 and VAE_RECIPE['batch_size'] == 128
    assert CODE_PRIOR_RECIPE['batch_size'] == 128


def test_fit_is_seeded():
    slices = structured_slices(300)
    torch.manual_seed(0)
    model = KernelVAE(hidden_channels=8)
    copies = [copy.deepcopy(model) for _ in range(3)]

    state = torch.get_rng_state()
    histories = [fit_kernel_model(m, slices, epochs=3, seed=seed)
                 for m, seed in zip(copies, (0, 0, 1))]
    # the global random state is left as it was
    assert torch.equal(torch.get_rng_state(), state)

    assert histories[0] == histories[1]
    for a, b in zip(copies[0].parameters(), copies[1].parameters()):
        assert torch.equal(a, b)
    assert histories[0]['loss'] != histories[2]['loss']


def test_fit_learning_rate_falls_linearly_to_zero():
    model = ConstantGradient()
    # 300 examples in batches of 128: three steps per epoch, twelve in all
    history = fit_kernel_model(model, torch.zeros(300, 3, 3), epochs=4,
                               batch_size=128, lr=0.1)
    assert history['lr'] == pytest.approx([0.075, 0.05, 0.025, 0.0])

    positions = model.seen + [float(model.position.detach())]
    steps = -torch.tensor(positions, dtype=torch.float64).diff()
    expected = 0.1 * (1 - torch.arange(12, dtype=torch.float64) / 12)
    assert torch.allclose(steps, expected, atol=1e-6)


def test_fit_reports_losses_statistics_and_validation():
    slices = structured_slices(400)
    torch.manual_seed(0)
    model = KernelVQVAE()
    model.eval()
    history = fit_kernel_model(model, slices[:300], epochs=3,
                               val_slices=slices[300:], **VQVAE_RECIPE)
    assert set(history) == {'loss', 'lr', 'val_loss', 'reconstruction', 'vq',
                            'perplexity'}
    assert all(len(values) == 3 for values in history.values())
    assert history['val_loss'][-1] < history['val_loss'][0]
    assert not model.training  # the mode it came in with

    with torch.no_grad():
        assert model.loss(slices[300:])[0] == pytest.approx(
            history['val_loss'][-1], rel=1e-5)


def test_fit_trains_a_code_prior_on_long_codes():
    generator = torch.Generator().manual_seed(0)
    codes = torch.randint(8, (256, 1), generator=generator).repeat(1, 4)
    torch.manual_seed(0)
    prior = CodePrior(num_positions=4, num_embeddings=8, hidden_channels=16)
    history = fit_kernel_model(prior, codes, epochs=20, lr=0.01)
    assert set(history) == {'loss', 'lr'}
    assert history['loss'][-1] < 0.5 * history['loss'][0]


def test_fit_rejects_non_finite_data_and_losses():
    slices = structured_slices(64)
    slices[5, 1, 2] = float('nan')
    slices[9, 0, 0] = float('inf')
    with pytest.raises(GhnlibError, match=r'slices with 2 example\(s\).*NaN'):
        fit_kernel_model(KernelVAE(), slices)
    with pytest.raises(GhnlibError, match='val_slices'):
        fit_kernel_model(KernelVAE(), structured_slices(64),
                         val_slices=slices)

    # the fourth call is step 2 of epoch 2 with two steps per epoch
    with pytest.raises(GhnlibError, match=r'nan at epoch 2/3, step 2/2'):
        fit_kernel_model(FailsAt(step=4), structured_slices(200), epochs=3)


def test_fit_rejects_bad_arguments():
    slices = structured_slices(16)
    with pytest.raises(GhnlibError, match='loss'):
        fit_kernel_model(nn.Linear(2, 2), slices)
    with pytest.raises(GhnlibError, match='epochs'):
        fit_kernel_model(KernelVAE(), slices, epochs=0)
    with pytest.raises(GhnlibError, match='batch_size'):
        fit_kernel_model(KernelVAE(), slices, batch_size=1.5)
    with pytest.raises(GhnlibError, match='lr'):
        fit_kernel_model(KernelVAE(), slices, lr=0.0)
    with pytest.raises(GhnlibError, match='at least one example'):
        fit_kernel_model(KernelVAE(), slices[:0])
    with pytest.raises(GhnlibError, match='as a tensor'):
        fit_kernel_model(KernelVAE(), slices.tolist())
