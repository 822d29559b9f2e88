import itertools
import json
import math

import pytest
import torch

from ghnlib.local.code_prior import CodePrior
from ghnlib.local.fit import fit_kernel_model


def copy_codes(n, num_positions=9, num_embeddings=128, seed=0):
    """Grids whose first code is uniform and every later code copies the
    one before it: entropy log K per grid."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(num_embeddings, (n, 1), generator=generator)
    return first.repeat(1, num_positions)


def test_code_prior_shapes_and_config():
    prior = CodePrior(num_positions=4, num_embeddings=10, hidden_channels=8)
    codes = torch.randint(10, (6, 4))
    assert prior.logits(codes).shape == (6, 4, 10)
    assert prior.log_prob(codes).shape == (6,)
    assert prior.loss(codes).dim() == 0
    samples = prior.sample(5)
    assert samples.shape == (5, 4) and samples.dtype == torch.long
    assert samples.min() >= 0 and samples.max() < 10
    assert str(prior) == ('CodePrior(num_positions=4, num_embeddings=10, '
                          'hidden_channels=8)')
    config = json.loads(json.dumps(prior.config))
    rebuilt = CodePrior(**config)
    rebuilt.load_state_dict(prior.state_dict())
    assert torch.equal(rebuilt.log_prob(codes), prior.log_prob(codes))


def test_code_prior_is_autoregressive():
    torch.manual_seed(0)
    prior = CodePrior(num_positions=9, num_embeddings=16, hidden_channels=8)
    codes = torch.randint(16, (32, 9))
    logits = prior.logits(codes)
    for position in range(9):
        changed = codes.clone()
        changed[:, position:] = torch.randint(16, (32, 9 - position))
        # the conditional at a position ignores it and everything after it
        assert torch.allclose(prior.logits(changed)[:, position],
                              logits[:, position], atol=1e-6)
        if position > 0:
            # ... and uses what comes before
            changed = codes.clone()
            changed[:, position - 1] = (codes[:, position - 1] + 1) % 16
            assert not torch.allclose(prior.logits(changed)[:, position],
                                      logits[:, position])


def test_code_prior_log_prob_is_the_chain_rule():
    torch.manual_seed(0)
    prior = CodePrior(num_positions=3, num_embeddings=4, hidden_channels=8)
    grids = torch.tensor(list(itertools.product(range(4), repeat=3)))
    log_prob = prior.log_prob(grids)
    assert torch.allclose(log_prob.exp().sum(), torch.tensor(1.0), atol=1e-5)

    manual = torch.zeros(len(grids))
    for index, grid in enumerate(grids.tolist()):
        for position in range(3):
            # the conditional given only the earlier codes; later ones are
            # filled with zeros
            prefix = grid[:position] + [0] * (3 - position)
            logits = prior.logits(torch.tensor([prefix]))[0, position]
            manual[index] += logits.log_softmax(-1)[grid[position]]
    assert torch.allclose(log_prob, manual, atol=1e-5)


def test_code_prior_learns_copied_codes():
    codes = copy_codes(2048)
    uniform_nll = 9 * math.log(128)
    torch.manual_seed(0)
    prior = CodePrior()
    assert prior.loss(codes) > 0.7 * uniform_nll
    history = fit_kernel_model(prior, codes, epochs=5, lr=0.01)
    assert history['loss'][-1] < 0.2 * uniform_nll

    held_out = copy_codes(512, seed=1)
    assert prior.loss(held_out) < math.log(128) + 1.0
    broken = held_out.clone()
    broken[:, 4] = (broken[:, 4] + 1) % 128
    assert (prior.log_prob(broken) < prior.log_prob(held_out) - 5).all()

    samples = prior.sample(500, generator=torch.Generator().manual_seed(0))
    assert (samples == samples[:, :1]).all(1).float().mean() > 0.9
    assert samples[:, 0].unique().numel() > 100  # the first code stays free


def test_code_prior_sampling_is_seeded():
    torch.manual_seed(0)
    prior = CodePrior(num_positions=9, num_embeddings=32, hidden_channels=8)

    def draw(seed):
        return prior.sample(64, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))


def test_code_prior_rejects_bad_codes():
    prior = CodePrior()
    with pytest.raises(ValueError, match=r'\[B, 9\]'):
        prior.log_prob(torch.zeros(4, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='integer codes'):
        prior.loss(torch.zeros(4, 9))
    out_of_range = torch.zeros(4, 9, dtype=torch.long)
    out_of_range[2, 5] = 130
    with pytest.raises(ValueError, match=r'\[0, 128\).*\[0, 130\]'):
        prior.log_prob(out_of_range)
    with pytest.raises(ValueError, match='positive integer'):
        prior.sample(0)
    with pytest.raises(ValueError, match='num_embeddings'):
        CodePrior(num_embeddings=0)
