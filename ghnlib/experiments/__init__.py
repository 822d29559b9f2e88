r"""The paper's experiments as one resumable command: initialisers trained,
networks trained per initialisation, a report with tables and figures."""
from ghnlib.experiments.runner import INITS, ExperimentConfig, run_experiment

__all__ = ['ExperimentConfig', 'run_experiment', 'INITS']
