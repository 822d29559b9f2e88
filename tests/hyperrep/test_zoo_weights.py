import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.hyperrep import load_zoo_weights


def test_checkpoints_from_min_epoch_with_validation_accuracy(zoo):
    directory, members = zoo
    weights = load_zoo_weights(directory, 'small_cnn')
    assert len(weights) == 10 and weights.arch == 'small_cnn'
    assert weights.epochs == [1.0, 2.0] * 5
    assert weights.seeds == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert weights.input_shape == (1, 1, 28, 28)
    last = members[3].checkpoints()[-1]
    assert weights.accuracy[7].item() == last.val_accuracy
    assert all(torch.equal(weights.states[7][k], v)
               for k, v in last.state.items())
    everything = load_zoo_weights(directory, min_epoch=0)
    assert len(everything) == 15 and everything.epochs[0] == 0.0
    with pytest.raises(GhnlibError, match='lower min_epoch'):
        load_zoo_weights(directory, min_epoch=3)
