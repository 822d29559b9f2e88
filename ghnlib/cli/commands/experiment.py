r"""``ghnlib experiment``."""
import dataclasses
import os
from typing import Annotated

import torch
import tyro

from ghnlib.experiments import ExperimentConfig, run_experiment

__all__ = ['Experiment']


@dataclasses.dataclass
class Experiment:
    r"""Train the initialisers (or take given ones), train MEMBERS networks
    per initialisation with the plain recipe, and write report.md,
    results.json and figures: steps to thresholds, accuracy quartiles,
    ensembles under corruption, diversity. Resumable.

    Args:
        out (str): The run's folder.
        quick (bool): Small sizes (ExperimentConfig.quick), about ten
            minutes on 2 cores; the other flags change them.
        config (ExperimentConfig): What is run (ExperimentConfig).
        device (str): Where to train.
        progress (bool): Progress messages.
    """
    out: Annotated[str, tyro.conf.arg(metavar='DIR')]
    quick: bool = False
    config: ExperimentConfig = dataclasses.field(
        default_factory=ExperimentConfig)
    device: str = 'cuda' if torch.cuda.is_available() else 'cpu'
    progress: bool = True

    def run(self) -> int:
        results = run_experiment(self.config, self.out, device=self.device,
                                 progress=self.progress)
        print(f"done in {results['seconds'] / 60:.1f} min: "
              f"{os.path.join(self.out, 'report.md')}")
        return 0
