r"""Evaluation metrics of the `"From Pointwise to Powerhouse: Initialising
Neural Networks with Generative Models" <https://arxiv.org/abs/2310.16695>`_
paper: accuracy, calibration, ensembles, ensemble diversity and convergence
speed."""
import math
import operator
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError

__all__ = [
    'accuracy',
    'CalibrationBins',
    'calibration_bins',
    'expected_calibration_error',
    'ensemble_probabilities',
    'prediction_agreement',
    'logit_cosine_similarity',
    'upper_triangle_mean',
    'steps_to_threshold',
]

MemberLogits = Union[Tensor, Sequence[Tensor]]

# Wide enough for float32 softmax over thousands of classes, narrow enough
# that logits or unnormalised scores are caught.
PROBABILITY_SUM_TOLERANCE = 1e-3

# Below this norm a logit vector has no direction; its cosine counts as 0.
COSINE_EPS = 1e-8


def _check_scores(scores: Tensor, owner: str, what: str) -> None:
    if not isinstance(scores, Tensor):
        raise GhnlibError(f'{owner}: {what} must be a torch tensor, got '
                          f'{type(scores).__name__}; convert with '
                          'torch.as_tensor')
    if scores.dim() != 2 or scores.size(1) < 1:
        raise GhnlibError(f'{owner}: {what} must have shape [N, C] (one row '
                          f'of class scores per input), got '
                          f'{list(scores.shape)}')
    if not scores.is_floating_point():
        raise GhnlibError(f'{owner}: {what} must be floating point, got '
                          f'{scores.dtype}; convert with .float()')
    if scores.size(0) == 0:
        raise GhnlibError(f'{owner}: {what} holds no inputs (shape '
                          f'{list(scores.shape)}); evaluate at least one')


def _check_labels(labels: Tensor, num_inputs: int, num_classes: int,
                  owner: str) -> None:
    if not isinstance(labels, Tensor):
        raise GhnlibError(f'{owner}: labels must be a torch tensor, got '
                          f'{type(labels).__name__}; convert with '
                          'torch.as_tensor')
    if (labels.dim() != 1 or labels.dtype == torch.bool
            or labels.is_floating_point() or labels.is_complex()):
        raise GhnlibError(f'{owner}: labels must be a 1-D integer tensor, '
                          f'got dtype {labels.dtype} and shape '
                          f'{list(labels.shape)}; use labels.long().view(-1)')
    if labels.numel() != num_inputs:
        raise GhnlibError(f'{owner}: {num_inputs} predictions but '
                          f'{labels.numel()} labels; give one label per '
                          'prediction row')
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise GhnlibError(f'{owner}: labels must lie in [0, {num_classes}) '
                          f'for {num_classes} class scores per row, found '
                          f'values in [{low}, {high}]')


def _check_probabilities(probs: Tensor, owner: str) -> None:
    _check_scores(probs, owner, 'probs')
    probs = probs.detach()
    if not bool(torch.isfinite(probs).all()):
        raise GhnlibError(f'{owner}: probs contains NaN or infinite values; '
                          'check the model outputs')
    if bool((probs < 0).any()):
        raise GhnlibError(f'{owner}: probs must be class probabilities, '
                          f'found a negative entry {float(probs.min())}; '
                          'apply logits.softmax(dim=-1) first')
    row_sums = probs.sum(dim=1, dtype=torch.float64)
    worst = int((row_sums - 1).abs().argmax())
    if abs(float(row_sums[worst]) - 1) > PROBABILITY_SUM_TOLERANCE:
        raise GhnlibError(
            f'{owner}: probs must be class probabilities whose rows sum to 1 '
            f'(within {PROBABILITY_SUM_TOLERANCE}), but row {worst} sums to '
            f'{float(row_sums[worst]):.6g}; apply logits.softmax(dim=-1) '
            'first')


def _check_num_bins(num_bins: int, owner: str) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) \
            or num_bins < 1:
        raise GhnlibError(f'{owner}: num_bins must be a positive int (the '
                          f'paper uses 10), got {num_bins!r}')


def _stack_members(member_logits: MemberLogits, owner: str) -> Tensor:
    if isinstance(member_logits, Tensor):
        logits = member_logits
    elif isinstance(member_logits, (list, tuple)) and all(
            isinstance(member, Tensor) for member in member_logits):
        if len(member_logits) == 0:
            raise GhnlibError(f'{owner}: member_logits is empty; give the '
                              'logits of at least one member')
        shapes = {tuple(member.shape) for member in member_logits}
        if len(shapes) != 1:
            raise GhnlibError(
                f'{owner}: every member must give logits of the same shape '
                f'[N, C] on the same inputs, got shapes {sorted(shapes)}')
        logits = torch.stack(list(member_logits))
    else:
        raise GhnlibError(f'{owner}: member_logits must be a tensor [M, N, '
                          'C] or a list of M tensors [N, C], got '
                          f'{type(member_logits).__name__}')
    if logits.dim() != 3 or 0 in logits.shape:
        raise GhnlibError(f'{owner}: member_logits must have shape [M, N, C] '
                          '(members, inputs, classes) with no empty axis, '
                          f'got {list(logits.shape)}; stack the members '
                          'with torch.stack')
    if not logits.is_floating_point():
        raise GhnlibError(f'{owner}: member_logits must be floating point, '
                          f'got {logits.dtype}; convert with .float()')
    return logits.detach()


def accuracy(logits_or_probs: Tensor, labels: Tensor) -> float:
    r"""The fraction of inputs whose highest-scoring class is their label.

    .. math::
        \mathrm{acc} = \frac{1}{n} \sum_{i=1}^{n}
        \left[ \arg\max_c z_{ic} = y_i \right]

    Args:
        logits_or_probs (torch.Tensor): Logits or probabilities :math:`z`;
            both give the same :math:`\arg\max`.
        labels (torch.Tensor): Class labels :math:`y`.

    Shapes:
        - **input:** :math:`[N, C]`, :math:`[N]`
        - **output:** :obj:`float` in :math:`[0, 1]`
    """
    _check_scores(logits_or_probs, 'accuracy', 'logits_or_probs')
    _check_labels(labels, logits_or_probs.size(0), logits_or_probs.size(1),
                  'accuracy')
    predictions = logits_or_probs.detach().argmax(dim=1)
    return float((predictions == labels).double().mean())


class CalibrationBins(NamedTuple):
    r"""Per-bin statistics of :func:`calibration_bins`, the points of a
    reliability diagram."""
    #: Number of inputs whose confidence falls in each bin, :math:`[s]`.
    counts: Tensor
    #: Accuracy of each bin, :math:`[s]`; :obj:`NaN` where a bin is empty.
    accuracy: Tensor
    #: Mean confidence of each bin, :math:`[s]`; :obj:`NaN` where empty.
    confidence: Tensor
    #: Bin edges :math:`0, 1/s, \ldots, 1`, :math:`[s + 1]`.
    edges: Tensor


def calibration_bins(probs: Tensor, labels: Tensor,
                     num_bins: int = 10) -> CalibrationBins:
    r"""Counts, accuracy and mean confidence of predictions grouped into
    :math:`s` equal-width confidence bins, as in `"On Calibration of Modern
    Neural Networks" <https://arxiv.org/abs/1706.04599>`_.

    .. math::
        B_m = \left\{ i : \tfrac{m - 1}{s} < \hat{p}_i \le \tfrac{m}{s}
        \right\}, \quad
        \mathrm{acc}(B_m) = \frac{1}{|B_m|} \sum_{i \in B_m}
        [\hat{y}_i = y_i], \quad
        \mathrm{conf}(B_m) = \frac{1}{|B_m|} \sum_{i \in B_m} \hat{p}_i

    with confidence :math:`\hat{p}_i = \max_c p_{ic}` and prediction
    :math:`\hat{y}_i = \arg\max_c p_{ic}`. A confidence on an edge, e.g.
    exactly :math:`0.1`, goes into the lower bin. Statistics are computed in
    :obj:`float64`; empty bins have :obj:`NaN` accuracy and confidence.

    Args:
        probs (torch.Tensor): Class probabilities :math:`p` (rows sum to 1,
            e.g. :obj:`logits.softmax(-1)`).
        labels (torch.Tensor): Class labels :math:`y`.
        num_bins (int, optional): Number of bins :math:`s`.
            (default: :obj:`10`)

    Shapes:
        - **input:** :math:`[N, C]`, :math:`[N]`
        - **output:** :class:`CalibrationBins` of :math:`[s]` tensors (and
          :math:`[s + 1]` edges)
    """
    return _calibration_bins(probs, labels, num_bins, 'calibration_bins')


def _calibration_bins(probs: Tensor, labels: Tensor, num_bins: int,
                      owner: str) -> CalibrationBins:
    _check_probabilities(probs, owner)
    _check_labels(labels, probs.size(0), probs.size(1), owner)
    _check_num_bins(num_bins, owner)
    probs = probs.detach()
    if probs.dtype not in (torch.float32, torch.float64):
        probs = probs.float()
    confidence, prediction = probs.max(dim=1)
    # Edges in the probabilities' own dtype, so that a confidence written as
    # the literal 0.1 compares equal to the edge 1/10 and lands in bin 1.
    inner_edges = torch.arange(1, num_bins, dtype=probs.dtype) / num_bins
    bin_index = torch.bucketize(confidence, inner_edges, right=False)

    correct = (prediction == labels).double()
    counts = torch.bincount(bin_index, minlength=num_bins)
    correct_sums = torch.zeros(num_bins, dtype=torch.float64).index_add_(
        0, bin_index, correct)
    confidence_sums = torch.zeros(num_bins, dtype=torch.float64).index_add_(
        0, bin_index, confidence.double())
    bin_sizes = counts.double()
    bin_sizes[counts == 0] = math.nan
    edges = torch.arange(num_bins + 1, dtype=torch.float64) / num_bins
    return CalibrationBins(counts, correct_sums / bin_sizes,
                           confidence_sums / bin_sizes, edges)


def expected_calibration_error(probs: Tensor, labels: Tensor,
                               num_bins: int = 10) -> float:
    r"""The expected calibration error (ECE) of `"On Calibration of Modern
    Neural Networks" <https://arxiv.org/abs/1706.04599>`_, as defined in the
    supplementary of the `"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_ paper (:math:`s = 10` bins).

    .. math::
        \mathrm{ECE} = \sum_{m=1}^{s} \frac{|B_m|}{n}
        \left| \mathrm{acc}(B_m) - \mathrm{conf}(B_m) \right|

    with the equal-width bins :math:`B_m` of :func:`calibration_bins`
    (confidence :math:`\max_c p_{ic}`, bin :math:`m` holding confidences in
    :math:`(\tfrac{m-1}{s}, \tfrac{m}{s}]`). For an ensemble, pass
    :func:`ensemble_probabilities`.

    Args:
        probs (torch.Tensor): Class probabilities :math:`p` (rows sum to 1,
            e.g. :obj:`logits.softmax(-1)`).
        labels (torch.Tensor): Class labels :math:`y`.
        num_bins (int, optional): Number of bins :math:`s`.
            (default: :obj:`10`)

    Shapes:
        - **input:** :math:`[N, C]`, :math:`[N]`
        - **output:** :obj:`float` in :math:`[0, 1]`
    """
    bins = _calibration_bins(probs, labels, num_bins,
                             'expected_calibration_error')
    occupied = bins.counts > 0
    weights = bins.counts[occupied].double() / probs.size(0)
    gaps = (bins.accuracy[occupied] - bins.confidence[occupied]).abs()
    return float((weights * gaps).sum())


def ensemble_probabilities(member_logits: MemberLogits) -> Tensor:
    r"""The predictive distribution of an ensemble: the mean of its
    members' softmax probabilities, as in `"Simple and Scalable Predictive
    Uncertainty Estimation using Deep Ensembles"
    <https://arxiv.org/abs/1612.01474>`_.

    .. math::
        \bar{p}_{ic} = \frac{1}{M} \sum_{k=1}^{M}
        \mathrm{softmax}(\mathbf{z}^{(k)}_i)_c

    Args:
        member_logits (torch.Tensor or list of torch.Tensor): Logits
            :math:`\mathbf{z}^{(k)}` of each member on the same inputs.

    Shapes:
        - **input:** :math:`[M, N, C]` or :math:`M` tensors :math:`[N, C]`
        - **output:** :math:`[N, C]`
    """
    logits = _stack_members(member_logits, 'ensemble_probabilities')
    return logits.softmax(dim=-1).mean(dim=0)


def prediction_agreement(member_logits: MemberLogits) -> Tensor:
    r"""Pairwise prediction agreement of ensemble members: the fraction of
    inputs on which two members predict the same class (Fig. 6 of the
    `"From Pointwise to Powerhouse" <https://arxiv.org/abs/2310.16695>`_
    paper).

    .. math::
        A_{kl} = \frac{1}{n} \sum_{i=1}^{n}
        \left[ \arg\max_c z^{(k)}_{ic} = \arg\max_c z^{(l)}_{ic} \right]

    The matrix is symmetric with ones on its diagonal; summarise it with
    :func:`upper_triangle_mean`.

    Args:
        member_logits (torch.Tensor or list of torch.Tensor): Logits (or
            probabilities) :math:`\mathbf{z}^{(k)}` of each member on the
            same inputs.

    Shapes:
        - **input:** :math:`[M, N, C]` or :math:`M` tensors :math:`[N, C]`
        - **output:** :math:`[M, M]` (:obj:`float64`)
    """
    logits = _stack_members(member_logits, 'prediction_agreement')
    predictions = logits.argmax(dim=-1)
    same = predictions.unsqueeze(1) == predictions.unsqueeze(0)
    return same.double().mean(dim=-1)


def logit_cosine_similarity(member_logits: MemberLogits) -> Tensor:
    r"""Pairwise cosine similarity of ensemble members' logits: the cosine
    between two members' logit vectors on the same input, averaged over the
    inputs (Fig. 6 of the `"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_ paper).

    .. math::
        S_{kl} = \frac{1}{n} \sum_{i=1}^{n}
        \frac{\mathbf{z}^{(k)}_i \cdot \mathbf{z}^{(l)}_i}
        {\max(\|\mathbf{z}^{(k)}_i\|, \epsilon)\,
        \max(\|\mathbf{z}^{(l)}_i\|, \epsilon)}

    where :math:`\mathbf{z}^{(k)}_i \in \mathbb{R}^C` is member :math:`k`'s
    logit vector for input :math:`i` and :math:`\epsilon = 10^{-8}`, so an
    all-zero logit vector has similarity 0 to everything (itself included).
    This is the mean of per-input cosines, not the cosine of the members'
    flattened :math:`N \cdot C` logits. Values lie in :math:`[-1, 1]`;
    summarise the matrix with :func:`upper_triangle_mean`.

    Args:
        member_logits (torch.Tensor or list of torch.Tensor): Logits
            :math:`\mathbf{z}^{(k)}` of each member on the same inputs.

    Shapes:
        - **input:** :math:`[M, N, C]` or :math:`M` tensors :math:`[N, C]`
        - **output:** :math:`[M, M]` (the logits' dtype)
    """
    logits = _stack_members(member_logits, 'logit_cosine_similarity')
    norms = logits.norm(dim=-1, keepdim=True).clamp_min(COSINE_EPS)
    directions = logits / norms
    return torch.einsum('knc,lnc->kl', directions,
                        directions) / logits.size(1)


def upper_triangle_mean(matrix: Tensor) -> float:
    r"""The mean of the entries strictly above the diagonal of a square
    pairwise matrix, the summary score of Fig. 6 of the `"From Pointwise to
    Powerhouse" <https://arxiv.org/abs/2310.16695>`_ paper.

    .. math::
        \bar{S} = \frac{2}{M (M - 1)} \sum_{k < l} S_{kl}

    Args:
        matrix (torch.Tensor): A pairwise matrix, e.g. of
            :func:`prediction_agreement` or :func:`logit_cosine_similarity`.

    Shapes:
        - **input:** :math:`[M, M]`, :math:`M \ge 2`
        - **output:** :obj:`float`
    """
    if not isinstance(matrix, Tensor):
        raise GhnlibError(f'upper_triangle_mean: matrix must be a torch '
                          f'tensor, got {type(matrix).__name__}')
    if matrix.dim() != 2 or matrix.size(0) != matrix.size(1):
        raise GhnlibError(f'upper_triangle_mean: matrix must be square '
                          f'[M, M], got shape {list(matrix.shape)}')
    if matrix.size(0) < 2:
        raise GhnlibError(
            f'upper_triangle_mean: a {matrix.size(0)}x{matrix.size(0)} '
            'matrix has no entries above its diagonal; compare at least 2 '
            'members')
    rows, cols = torch.triu_indices(matrix.size(0), matrix.size(1), offset=1)
    return float(matrix.detach()[rows, cols].double().mean())


def steps_to_threshold(steps: Sequence[int], accuracies: Sequence[float],
                       threshold: float) -> Optional[int]:
    r"""The first evaluation step at which a validation accuracy curve
    reaches a threshold, the convergence speed of Table 1 of the
    supplementary of the `"From Pointwise to Powerhouse"
    <https://arxiv.org/abs/2310.16695>`_ paper.

    .. math::
        t^\ast = \min \{ t_j : a_j \ge \tau \}

    Returns :obj:`None` if the curve never reaches :math:`\tau` (NaN
    accuracies never do).

    Args:
        steps (Sequence[int]): Strictly increasing evaluation steps
            :math:`t_j` (e.g. epochs or batches; may start at 0 for the
            evaluation before training).
        accuracies (Sequence[float]): Accuracy :math:`a_j` measured at each
            step.
        threshold (float): The accuracy :math:`\tau` to reach.

    Shapes:
        - **input:** :math:`[T]`, :math:`[T]`, scalar
        - **output:** :obj:`int` or :obj:`None`
    """
    try:
        steps = [operator.index(step) for step in steps]
    except TypeError as error:
        raise GhnlibError(f'steps_to_threshold: steps must be a sequence of '
                          f'ints, got {steps!r}') from error
    try:
        accuracies = [float(value) for value in accuracies]
        threshold = float(threshold)
    except (TypeError, ValueError) as error:
        raise GhnlibError(
            f'steps_to_threshold: accuracies must be a sequence of numbers '
            f'and threshold a number, got {accuracies!r} and '
            f'{threshold!r}') from error
    if len(steps) != len(accuracies):
        raise GhnlibError(f'steps_to_threshold: {len(steps)} steps but '
                          f'{len(accuracies)} accuracies; give one accuracy '
                          'per evaluation step')
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        raise GhnlibError(f'steps_to_threshold: steps must be strictly '
                          f'increasing, got {steps}; sort the curve by step '
                          'and drop repeated evaluations')
    if math.isnan(threshold):
        raise GhnlibError('steps_to_threshold: threshold is NaN; give the '
                          'accuracy to reach, e.g. 0.75')
    for step, value in zip(steps, accuracies):
        if value >= threshold:
            return step
    return None
