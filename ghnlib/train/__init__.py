r"""Training: graph hypernetworks (GHN, Noise GHN) and plain networks."""
from ghnlib.train.arch_dataset import ArchDataset
from ghnlib.train.evaluation import Evaluation, calibrate_batch_norm, evaluate
from ghnlib.train.ghn_loss import MetaBatchLoss
from ghnlib.train.ghn_trainer import GHNTrainer, GHNTrainingConfig
from ghnlib.train.net_trainer import (SGDRecipe, TrainingHistory, lr_schedule,
                                      train_network)

__all__ = [
    'ArchDataset',
    'GHNTrainer',
    'GHNTrainingConfig',
    'MetaBatchLoss',
    'SGDRecipe',
    'TrainingHistory',
    'train_network',
    'lr_schedule',
    'Evaluation',
    'evaluate',
    'calibrate_batch_norm',
]
