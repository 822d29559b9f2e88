import math

import pytest
import torch
import torch.nn.functional as F

from ghnlib.errors import GhnlibError
from ghnlib.metrics import (accuracy, calibration_bins,
                            ensemble_probabilities, expected_calibration_error,
                            logit_cosine_similarity, prediction_agreement,
                            steps_to_threshold, upper_triangle_mean)


def test_accuracy_of_known_predictions():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.1, 0.9, 0.0],
                           [-1.0, 5.0, 4.0]])
    # Predictions 0, 2, 1, 1 against labels 0, 1, 1, 1: three right.
    labels = torch.tensor([0, 1, 1, 1])
    assert accuracy(logits, labels) == 0.75
    assert accuracy(logits.softmax(-1).double(), labels) == 0.75


def test_accuracy_rejects_bad_labels():
    logits = torch.zeros(4, 3)
    with pytest.raises(GhnlibError, match=r'labels must lie in \[0, 3\)'):
        accuracy(logits, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(GhnlibError, match='4 predictions but 3 labels'):
        accuracy(logits, torch.tensor([0, 1, 2]))
    with pytest.raises(GhnlibError, match='integer'):
        accuracy(logits, torch.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(GhnlibError, match=r'\[N, C\]'):
        accuracy(torch.zeros(4), torch.tensor([0, 1, 2, 0]))


def known_predictions():
    """Six predictions over 3 classes falling into 3 of the 10 bins."""
    probs = torch.tensor([
        [0.90, 0.05, 0.05],  # conf 0.90, bin (0.8, 0.9], right
        [0.85, 0.10, 0.05],  # conf 0.85, bin (0.8, 0.9], wrong
        [0.10, 0.60, 0.30],  # conf 0.60, bin (0.5, 0.6], right
        [0.30, 0.15, 0.55],  # conf 0.55, bin (0.5, 0.6], right
        [0.35, 0.40, 0.25],  # conf 0.40 on an edge: bin (0.3, 0.4], wrong
        [0.35, 0.33, 0.32],  # conf 0.35, bin (0.3, 0.4], right
    ], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 2, 0, 0])
    return probs, labels


def test_ece_of_hand_computed_example():
    probs, labels = known_predictions()
    # Bin (0.8, 0.9]: acc 1/2, conf 0.875, gap 0.375, weight 2/6 -> 15/120
    # Bin (0.5, 0.6]: acc 1,   conf 0.575, gap 0.425, weight 2/6 -> 17/120
    # Bin (0.3, 0.4]: acc 1/2, conf 0.375, gap 0.125, weight 2/6 ->  5/120
    assert expected_calibration_error(probs, labels) == pytest.approx(
        37 / 120, abs=1e-12)
    assert expected_calibration_error(probs.float(), labels) == \
        pytest.approx(37 / 120, abs=1e-6)


def test_calibration_bins_of_hand_computed_example():
    probs, labels = known_predictions()
    bins = calibration_bins(probs, labels)
    assert bins.counts.tolist() == [0, 0, 0, 2, 0, 2, 0, 0, 2, 0]
    occupied = [3, 5, 8]
    assert torch.allclose(bins.accuracy[occupied],
                          torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(bins.confidence[occupied],
                          torch.tensor([0.375, 0.575, 0.875],
                                       dtype=torch.float64))
    empty = [0, 1, 2, 4, 6, 7, 9]
    assert bins.accuracy[empty].isnan().all()
    assert bins.confidence[empty].isnan().all()
    assert torch.allclose(bins.edges,
                          torch.linspace(0, 1, 11, dtype=torch.float64))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_confidence_on_an_edge_goes_into_the_lower_bin(dtype):
    uniform = torch.full((1, 10), 0.1, dtype=dtype)  # confidence exactly 0.1
    edge_07 = torch.tensor([[0.7, 0.3]], dtype=dtype)
    assert calibration_bins(uniform, torch.tensor([0])).counts[0] == 1
    assert calibration_bins(edge_07, torch.tensor([0])).counts[6] == 1
    # One bin of one right prediction at confidence 0.1: gap 0.9.
    assert expected_calibration_error(uniform, torch.tensor([0])) == \
        pytest.approx(0.9, abs=1e-6)


def test_perfect_calibration_gives_zero_ece():
    # 10 predictions at confidence 0.8 with 8 right, 5 at 0.6 with 3 right.
    high = torch.tensor([[0.8, 0.2]]).repeat(10, 1)
    low = torch.tensor([[0.4, 0.6]]).repeat(5, 1)
    probs = torch.cat([high, low])
    labels = torch.tensor([0] * 8 + [1] * 2 + [1] * 3 + [0] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(
        0.0, abs=1e-6)


def test_ece_matches_a_direct_loop_over_bins():
    generator = torch.Generator().manual_seed(0)
    probs = (3 * torch.randn(500, 7, generator=generator,
                             dtype=torch.float64)).softmax(-1)
    labels = torch.randint(0, 7, (500, ), generator=generator)
    expected = 0.0
    for low in range(5):
        lower, upper = low / 5, (low + 1) / 5
        rows = [i for i in range(500) if lower < probs[i].max() <= upper]
        if rows:
            hits = sum(int(probs[i].argmax() == labels[i]) for i in rows)
            mean_confidence = sum(float(probs[i].max()) for i in rows)
            expected += abs(hits - mean_confidence) / 500
    assert expected_calibration_error(probs, labels, num_bins=5) == \
        pytest.approx(expected, abs=1e-12)


def test_ece_rejects_logits_and_bad_bins():
    probs, labels = known_predictions()
    with pytest.raises(GhnlibError, match='expected_calibration_error: '
                       '.*row 0 sums to 1.1.*softmax'):
        expected_calibration_error(probs * 1.1, labels)
    with pytest.raises(GhnlibError, match='negative.*softmax'):
        expected_calibration_error(probs.log(), labels)
    with pytest.raises(GhnlibError, match='num_bins must be a positive int'):
        expected_calibration_error(probs, labels, num_bins=0)
    with pytest.raises(GhnlibError, match='NaN'):
        expected_calibration_error(torch.full((1, 2), math.nan),
                                   torch.tensor([0]))


def test_ensemble_probabilities_average_member_softmaxes():
    member_logits = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])
    # Softmaxes [1/2, 1/2] and [3/4, 1/4] average to [5/8, 3/8].
    assert torch.allclose(ensemble_probabilities(member_logits),
                          torch.tensor([[0.625, 0.375]]))
    generator = torch.Generator().manual_seed(1)
    members = [torch.randn(6, 4, generator=generator) for _ in range(3)]
    expected = sum(F.softmax(m, dim=-1) for m in members) / 3
    assert torch.allclose(ensemble_probabilities(members), expected)
    assert torch.allclose(ensemble_probabilities(torch.stack(members)),
                          expected)
    with pytest.raises(GhnlibError, match='same shape'):
        ensemble_probabilities([torch.zeros(6, 4), torch.zeros(5, 4)])
    with pytest.raises(GhnlibError, match=r'\[M, N, C\]'):
        ensemble_probabilities(torch.zeros(6, 4))


def test_prediction_agreement_of_hand_made_members():
    predictions = torch.tensor([[0, 1, 2, 0], [0, 1, 0, 0], [1, 1, 2, 2]])
    member_logits = 3.0 * F.one_hot(predictions, 3).float()
    # Members 0/1 agree on inputs 0, 1, 3; 0/2 on 1, 2; 1/2 on input 1.
    expected = torch.tensor([[1.0, 0.75, 0.5], [0.75, 1.0, 0.25],
                             [0.5, 0.25, 1.0]], dtype=torch.float64)
    agreement = prediction_agreement(member_logits)
    assert agreement.shape == (3, 3)
    assert torch.allclose(agreement, expected)
    assert upper_triangle_mean(agreement) == pytest.approx(0.5)
    assert torch.allclose(prediction_agreement(list(member_logits)), expected)


def test_logit_cosine_similarity_of_hand_made_vectors():
    member_logits = torch.tensor([
        [[1.0, 0.0], [1.0, 1.0]],
        [[0.0, 2.0], [2.0, 2.0]],  # vs member 0: orthogonal, then identical
        [[-1.0, 0.0], [-1.0, -1.0]],  # vs member 0: opposite twice
    ])
    # S01 = (0 + 1) / 2, S02 = (-1 - 1) / 2, S12 = (0 - 1) / 2.
    expected = torch.tensor([[1.0, 0.5, -1.0], [0.5, 1.0, -0.5],
                             [-1.0, -0.5, 1.0]])
    similarity = logit_cosine_similarity(member_logits)
    assert torch.allclose(similarity, expected, atol=1e-6)
    assert upper_triangle_mean(similarity) == pytest.approx(-1 / 3)
    zero = torch.zeros(2, 1, 3)
    assert torch.equal(logit_cosine_similarity(zero), torch.zeros(2, 2))


def test_logit_cosine_similarity_averages_per_input_cosines():
    generator = torch.Generator().manual_seed(2)
    member_logits = torch.randn(4, 9, 5, generator=generator,
                                dtype=torch.float64)
    similarity = logit_cosine_similarity(member_logits)
    for k in range(4):
        for l in range(4):
            expected = F.cosine_similarity(member_logits[k],
                                           member_logits[l], dim=-1).mean()
            assert similarity[k, l] == pytest.approx(float(expected),
                                                     abs=1e-12)


def test_upper_triangle_mean_by_hand():
    matrix = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0],
                           [7.0, 8.0, 9.0]])
    assert upper_triangle_mean(matrix) == pytest.approx((2 + 3 + 6) / 3)
    with pytest.raises(GhnlibError, match='at least 2 members'):
        upper_triangle_mean(torch.ones(1, 1))
    with pytest.raises(GhnlibError, match='square'):
        upper_triangle_mean(torch.ones(2, 3))


def test_steps_to_threshold_of_a_known_curve():
    steps = [0, 1, 2, 3, 4]
    curve = [0.50, 0.62, 0.66, 0.70, 0.76]
    assert steps_to_threshold(steps, curve, 0.65) == 2
    assert steps_to_threshold(steps, curve, 0.75) == 4
    assert steps_to_threshold(steps, curve, 0.70) == 3  # equal counts
    assert steps_to_threshold(steps, curve, 0.40) == 0
    assert steps_to_threshold(steps, curve, 0.80) is None
    assert steps_to_threshold([300, 600], [math.nan, 0.9], 0.8) == 600
    assert steps_to_threshold([], [], 0.5) is None


def test_steps_to_threshold_rejects_bad_curves():
    with pytest.raises(GhnlibError, match='2 steps but 3 accuracies'):
        steps_to_threshold([1, 2], [0.1, 0.2, 0.3], 0.5)
    with pytest.raises(GhnlibError, match='strictly increasing'):
        steps_to_threshold([1, 1, 2], [0.1, 0.2, 0.3], 0.5)
    with pytest.raises(GhnlibError, match='sequence of ints'):
        steps_to_threshold([0.5, 1.5], [0.1, 0.2], 0.5)
