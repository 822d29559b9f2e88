"""A hyper-representation as one initialisation of ``ghnlib experiment``,
on the small CNN at the zoo's 1×28×28 input."""
import json

import pytest
import torch

from ghnlib.data import get_splits
from ghnlib.experiments import ExperimentConfig, run_experiment
from ghnlib.models import get_model_for_input
from ghnlib.init import initialize
from ghnlib.train.evaluation import evaluate


def test_experiment_initialises_members_from_the_hyper_representation(
        hyper, tmp_path):
    hyper.save(tmp_path / 'hyperrep')
    config = ExperimentConfig(
        arch='small_cnn', image_size=28, channels=1, inits=('he', 'hyperrep'),
        hyperrep=str(tmp_path / 'hyperrep'), members=2, epochs=1,
        eval_every=20, milestones=(), lr=0.01, thresholds=(0.5, ),
        ensembles=1, ensemble_size=2, corruptions=('contrast', ),
        severities=(1, ))
    results = run_experiment(config, tmp_path / 'run', progress=False)
    saved = json.loads((tmp_path / 'run' / 'results.json').read_text())
    assert saved['specs']['hyperrep'] == f"hyperrep:{tmp_path / 'hyperrep'}"

    # Step 0 of the hyperrep members is the accuracy of the sampled weights,
    # written into a small CNN built for 1×28×28 inputs.
    _, val = get_splits('digits', ('train', 'val'), image_size=28,
                        channels=1)
    expected = []
    for k in range(config.members):
        model = get_model_for_input('small_cnn', (1, 1, 28, 28))
        initialize(model, f'hyperrep:{tmp_path / "hyperrep"}',
                   generator=torch.Generator().manual_seed(config.seed + k),
                   input_shape=(1, 1, 28, 28))
        expected.append(evaluate(model, val).accuracy)
    curve = results['convergence']['hyperrep']
    assert curve['steps'][0] == 0
    assert curve['mean'][0] == pytest.approx(sum(expected) / len(expected))
    assert curve['mean'][0] != pytest.approx(
        results['convergence']['he']['mean'][0])
