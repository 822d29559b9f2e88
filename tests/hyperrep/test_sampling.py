import pytest
import scipy.stats
import torch

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import (GaussianKDE, sample_raw_weights,
                             top_fraction_indices)


def test_top_fraction_keeps_the_most_accurate():
    accuracy = [0.5, 0.9, 0.1, 0.9, 0.7, 0.3, 0.2, 0.8, 0.6, 0.4]
    assert top_fraction_indices(accuracy, 0.3).tolist() == [1, 3, 7]
    assert top_fraction_indices(accuracy, 0.25).tolist() == [1, 3, 7]
    assert top_fraction_indices(accuracy, 0.01).tolist() == [1]
    assert sorted(top_fraction_indices(accuracy, 1.0).tolist()) == list(
        range(10))
    with pytest.raises(GhnlibError, match=r'\(0, 1\]'):
        top_fraction_indices(accuracy, 0.0)


@pytest.mark.parametrize('rule', ['scott', 'silverman'])
def test_bandwidth_rules_match_scipy(rule):
    points = torch.randn(40, 3, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    std = points.std(dim=0)
    for dimensionwise in (True, False):
        kde = GaussianKDE(points, rule, dimensionwise=dimensionwise)
        for d in range(3):
            reference = scipy.stats.gaussian_kde(points[:, d].numpy(), rule)
            assert kde.bandwidth[d].item() == pytest.approx(
                reference.covariance[0, 0] ** 0.5)
    factor = 40 ** (-1 / 5) if rule == 'scott' else (40 * 3 / 4) ** (-1 / 5)
    assert torch.allclose(kde.bandwidth, std * factor)
    assert torch.equal(GaussianKDE(points, 0.25).bandwidth,
                       torch.full((3, ), 0.25, dtype=torch.float64))
    with pytest.raises(GhnlibError, match='bandwidth'):
        GaussianKDE(points, 'wide')


def test_samples_mix_coordinates_or_perturb_points():
    points = torch.tensor([[0., 10., 20.], [1., 11., 21.], [2., 12., 22.]])
    generator = torch.Generator().manual_seed(0)
    joint = GaussianKDE(points, 0.0, dimensionwise=False).sample(200,
                                                                 generator)
    # Without bandwidth a joint sample is one of the points.
    assert all(any(torch.equal(row.float(), p) for p in points)
               for row in joint)
    mixed = GaussianKDE(points, 0.0, dimensionwise=True).sample(200,
                                                                generator)
    assert all(bool((points[:, d].double() == value).any())
               for row in mixed for d, value in enumerate(row))
    assert any(len({float(v) % 10 for v in row}) > 1 for row in mixed)
    # With a bandwidth, the variance is the points' (biased) one plus h^2.
    many = GaussianKDE(points, 0.5, dimensionwise=True).sample(
        40000, torch.Generator().manual_seed(1))
    expected = points.double().var(dim=0, unbiased=False) + 0.25
    assert torch.allclose(many.var(dim=0), expected, rtol=0.05)
    kde = GaussianKDE(points, 0.5)
    assert torch.equal(kde.sample(5, torch.Generator().manual_seed(1)),
                       kde.sample(5, torch.Generator().manual_seed(1)))


def test_raw_weight_kde_samples_near_the_best_models():
    generator = torch.Generator().manual_seed(0)
    states = [{'w': torch.randn(2, 3, generator=generator),
               'b': torch.randn(2, generator=generator),
               'steps': torch.tensor(i)} for i in range(10)]
    accuracy = torch.linspace(0, 1, 10)
    samples = sample_raw_weights(states, accuracy, 6, top_fraction=0.2,
                                 bandwidth=0.0, dimensionwise=False,
                                 generator=generator)
    assert len(samples) == 6
    for sample in samples:
        assert sample.keys() == states[0].keys()
        assert sample['w'].shape == (2, 3) and sample['w'].dtype == \
            torch.float32
        assert any(torch.equal(sample['w'], states[i]['w']) and
                   torch.equal(sample['b'], states[i]['b']) for i in (8, 9))
        assert sample['steps'] == 9  # not sampled: copied from the best
    with pytest.raises(GhnlibError, match='one accuracy per state dict'):
        sample_raw_weights(states, accuracy[:5], 2)
