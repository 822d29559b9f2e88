import json
import math

import pytest
import torch

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.experiments import ExperimentConfig, run_experiment
from ghnlib.experiments.report import FIGURES


def tiny_config(tmp_path, **changes):
    torch.manual_seed(0)
    for name, noise in (('ghn', 0), ('noise', 4)):
        GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2,
                          noise_dim=noise).save(tmp_path / f'{name}.safetensors')
    options = dict(image_size=8, inits=('he', 'vae', 'ghn', 'noise-ghn'),
                   members=3, epochs=1, eval_every=3, milestones=(),
                   thresholds=(0.2, 0.99), ensembles=2, ensemble_size=2,
                   corruptions=('gaussian_noise', 'contrast'),
                   severities=(1, 3), ghn=str(tmp_path / 'ghn.safetensors'),
                   noise_ghn=str(tmp_path / 'noise.safetensors'),
                   zoo_members=2, zoo_epochs=1, local_epochs=1,
                   max_slices=300)
    options.update(changes)
    return ExperimentConfig(**options)


def walk_numbers(value, path=''):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk_numbers(item, f'{path}/{key}')
    elif isinstance(value, list):
        for k, item in enumerate(value):
            yield from walk_numbers(item, f'{path}/{k}')
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def test_tiny_experiment_end_to_end_and_resume(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    out = tmp_path / 'run'
    results = run_experiment(config, out, progress=False)

    assert (out / 'report.md').exists() and (out / 'results.json').exists()
    for name in FIGURES:
        assert (out / name).read_bytes()[:4] == b'\x89PNG', name
    report = (out / 'report.md').read_text()
    for heading in ('## Steps to validation-accuracy thresholds',
                    '## Test accuracy of single networks',
                    '## Ensembles of 2 under corruption',
                    '## Diversity of trained members'):
        assert heading in report
    for init in config.inits:
        assert f'| {init} |' in report

    saved = json.loads((out / 'results.json').read_text())
    assert saved['inits'] == list(config.inits)
    numbers = list(walk_numbers({k: v for k, v in saved.items()
                                 if k not in ('config', 'specs')}))
    assert numbers
    eps = 1e-5
    for path, value in numbers:
        assert math.isfinite(value), path
        if path.startswith('/similarity') and '/cosine' in path:
            assert -1 - eps <= value <= 1 + eps, path
        elif path.startswith(('/test_accuracy', '/member_ece', '/ensembles',
                              '/similarity')) or (
                path.startswith('/convergence') and '/steps' not in path):
            assert -eps <= value <= 1 + eps, path
        elif path.startswith('/steps_to_threshold'):
            assert value >= 0, path
    for init in config.inits:
        ensembles = saved['ensembles'][init]
        assert list(ensembles) == ['0', '1', '3']
        assert len(ensembles['3']['ece']) == config.ensembles
        steps = saved['steps_to_threshold'][init]['0.2']
        assert steps['of'] == config.members
        assert saved['convergence'][init]['steps'][0] == 0
        similarity = saved['similarity'][init]
        assert len(similarity['agreement']) == config.members
        assert similarity['agreement'][0][0] == pytest.approx(1.0)
    # The vae initialiser was fit on a zoo trained here.
    assert saved['specs']['vae'].startswith('vae:')
    assert (out / 'zoo' / 'zoo.json').exists()

    # Resuming trains nothing again and gives the same numbers.
    calls = []
    import ghnlib.train as train_package
    monkeypatch.setattr(train_package, 'train_network',
                        lambda *a, **k: calls.append(1))
    again = run_experiment(config, out, progress=False)
    assert calls == []
    assert again['test_accuracy'] == results['test_accuracy']


def test_bad_configs_are_refused(tmp_path):
    with pytest.raises(GhnlibError, match='unknown initialisations'):
        run_experiment(tiny_config(tmp_path, inits=('he', 'lsuv')),
                       tmp_path / 'x', progress=False)
    with pytest.raises(GhnlibError, match='ensemble_size'):
        run_experiment(tiny_config(tmp_path, members=2, ensemble_size=3),
                       tmp_path / 'y', progress=False)
