r"""From the trained members of each initialisation to the paper's numbers:
convergence, steps to thresholds, accuracy quartiles, ensembles under
corruption, prediction and logit similarity."""
import random
import statistics
from typing import Any, Dict, List, Sequence

import torch
from torch import Tensor

from ghnlib import metrics

__all__ = ['analyse']


def _quartiles(values: Sequence[float]) -> Dict[str, float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    q = torch.quantile(tensor, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0],
                                            dtype=torch.float64))
    return dict(zip(('min', 'q1', 'median', 'q3', 'max'), q.tolist()))


def _mean_std(values: Sequence[float]) -> Dict[str, float]:
    return {'mean': statistics.fmean(values),
            'std': statistics.stdev(values) if len(values) > 1 else 0.0}


def _convergence(histories: List[Dict[str, Any]]) -> Dict[str, Any]:
    steps = histories[0]['steps']
    curves = torch.tensor([h['val_accuracy'] for h in histories],
                          dtype=torch.float64)
    return {'steps': steps, 'mean': curves.mean(0).tolist(),
            'std': (curves.std(0) if len(histories) > 1
                    else torch.zeros(len(steps))).tolist()}


def _steps_to(histories, threshold: float) -> Dict[str, Any]:
    per_member = [metrics.steps_to_threshold(h['steps'], h['val_accuracy'],
                                             threshold) for h in histories]
    reached = [s for s in per_member if s is not None]
    return {'per_member': per_member, 'reached': len(reached),
            'of': len(per_member),
            'mean': statistics.fmean(reached) if reached else None,
            'median': statistics.median(reached) if reached else None}


def _ensembles(logits: List[Dict[str, Tensor]], labels: Tensor,
               ood_labels: Dict[str, Tensor], subsets: List[List[int]],
               severities: Sequence[int]) -> Dict[str, Any]:
    keys_by_severity = {0: ['clean']}
    for key in ood_labels:
        keys_by_severity.setdefault(int(key.rsplit('/', 1)[1]), []).append(key)
    out = {}
    for severity in [0] + [s for s in severities]:
        accuracy, ece = [], []
        for subset in subsets:
            acc_values, ece_values = [], []
            for key in keys_by_severity.get(severity, []):
                target = labels if key == 'clean' else ood_labels[key]
                probs = metrics.ensemble_probabilities(
                    [logits[k][key].float() for k in subset])
                acc_values.append(metrics.accuracy(probs, target))
                ece_values.append(metrics.expected_calibration_error(
                    probs, target))
            if acc_values:
                accuracy.append(statistics.fmean(acc_values))
                ece.append(statistics.fmean(ece_values))
        if accuracy:
            out[str(severity)] = {'accuracy': accuracy, 'ece': ece,
                                  'accuracy_mean': _mean_std(accuracy),
                                  'ece_mean': _mean_std(ece)}
    return out


def analyse(config, runs: Dict[str, List[Dict[str, Any]]], labels: Tensor,
            ood_labels: Dict[str, Tensor], rng: random.Random
            ) -> Dict[str, Any]:
    """Every number of the report, as plain JSON values."""
    results: Dict[str, Any] = {'inits': list(runs), 'convergence': {},
                               'steps_to_threshold': {}, 'test_accuracy': {},
                               'member_ece': {}, 'ensembles': {},
                               'similarity': {}}
    members = config.members
    # The same random member subsets for every initialisation.
    subsets = [sorted(rng.sample(range(members), config.ensemble_size))
               for _ in range(config.ensembles)]
    results['ensemble_subsets'] = subsets
    for init, run in runs.items():
        histories = [member['history'] for member in run]
        logits = [member['logits'] for member in run]
        results['convergence'][init] = _convergence(histories)
        results['steps_to_threshold'][init] = {
            str(t): _steps_to(histories, t) for t in config.thresholds}
        accuracy = [metrics.accuracy(l['clean'].float(), labels)
                    for l in logits]
        results['test_accuracy'][init] = {'per_member': accuracy,
                                          **_quartiles(accuracy)}
        member_ece = [metrics.expected_calibration_error(
            torch.softmax(l['clean'].float(), -1), labels) for l in logits]
        results['member_ece'][init] = {'per_member': member_ece,
                                       **_quartiles(member_ece)}
        results['ensembles'][init] = _ensembles(
            logits, labels, ood_labels, subsets, config.severities)
        if members > 1:
            stacked = torch.stack([l['clean'].float() for l in logits])
            agreement = metrics.prediction_agreement(stacked)
            cosine = metrics.logit_cosine_similarity(stacked)
            results['similarity'][init] = {
                'agreement': agreement.tolist(),
                'agreement_mean': metrics.upper_triangle_mean(agreement),
                'cosine': cosine.tolist(),
                'cosine_mean': metrics.upper_triangle_mean(cosine)}
    return results
