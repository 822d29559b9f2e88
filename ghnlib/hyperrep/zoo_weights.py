r"""The weights a hyper-representation learns from: a zoo's checkpoints and
their accuracies."""
import dataclasses
import os
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor

from ghnlib.errors import GhnlibError
from ghnlib.zoo import load_zoo

__all__ = ['ZooWeights', 'load_zoo_weights']


@dataclasses.dataclass
class ZooWeights:
    r"""Checkpoints of a zoo, one entry each.

    Args:
        arch (str): The zoo's architecture.
        states (List[Dict[str, Tensor]]): The weights.
        accuracy (Tensor): Validation accuracy of each checkpoint, what the
            top-fraction sampling ranks by (the test split stays untouched
            for judging sampled models).
        seeds (List[int]): The member each checkpoint comes from.
        epochs (List[float]): When in its training it was taken.
        input_shape (Tuple[int, ...], optional): The input the members were
            trained on, if the zoo recorded it.
    """
    arch: str
    states: List[Dict[str, Tensor]] = dataclasses.field(repr=False)
    accuracy: Tensor
    seeds: List[int]
    epochs: List[float]
    input_shape: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.states)


def load_zoo_weights(zoo_dir: Union[str, os.PathLike],
                     arch: Optional[str] = None, *,
                     min_epoch: float = 1.0) -> ZooWeights:
    r"""Reads the checkpoints of a zoo built by
    :func:`~ghnlib.zoo.build_zoo`: with :obj:`keep_epochs=True`, every
    kept checkpoint from epoch :obj:`min_epoch` on (the untrained
    initialisation, epoch 0, is left out by default); otherwise each
    member's best-validation weights.

    Args:
        zoo_dir (str): The zoo's folder.
        arch (str, optional): The expected architecture. (default:
            :obj:`None`, whatever the zoo holds)
        min_epoch (float, optional): Earliest epoch kept. (default:
            :obj:`1.0`)
    """

    members = load_zoo(zoo_dir, arch)
    if not members:
        raise GhnlibError(f"the zoo in '{zoo_dir}' has no members yet; "
                          'build it with `ghnlib zoo`')
    archs = sorted({m.arch for m in members})
    if len(archs) > 1:
        raise GhnlibError(f"the zoo in '{zoo_dir}' mixes {archs}; pass "
                          'arch= to choose one, or use one folder per '
                          'architecture')
    states, accuracy, seeds, epochs = [], [], [], []
    for member in members:
        if member.has_checkpoints:
            for checkpoint in member.checkpoints():
                if checkpoint.epoch + 1e-9 < min_epoch:
                    continue
                states.append(checkpoint.state)
                accuracy.append(checkpoint.val_accuracy)
                seeds.append(member.seed)
                epochs.append(checkpoint.epoch)
        else:
            states.append(member.state_dict())
            accuracy.append(member.val_accuracy)
            seeds.append(member.seed)
            epochs.append(float('nan'))
    if not states:
        raise GhnlibError(f"the zoo in '{zoo_dir}' has no checkpoint from "
                          f'epoch {min_epoch} on; lower min_epoch')
    return ZooWeights(archs[0], states,
                      torch.tensor(accuracy, dtype=torch.float64), seeds,
                      epochs, members[0].input_shape)
