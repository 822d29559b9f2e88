import pytest

from ghnlib.data import load_digits
from ghnlib.hyperrep import HyperRepresentation
from ghnlib.train import SGDRecipe
from ghnlib.zoo import build_zoo

INPUT_SHAPE = (1, 1, 28, 28)
#: Two epochs of 34 SGD steps per member, every epoch kept.
RECIPE = SGDRecipe(lr=0.01, momentum=0.9, weight_decay=0.0, batch_size=32,
                   epochs=2, milestones=(), factors=())
SEEDS = range(5)


@pytest.fixture(scope='session')
def digits():
    return tuple(load_digits(image_size=28, channels=1, split=split)
                 for split in ('train', 'val', 'test'))


@pytest.fixture(scope='session')
def zoo(tmp_path_factory, digits):
    """Five small CNNs trained for two epochs on the real digits, with
    per-epoch checkpoints."""
    train, val, test = digits
    directory = tmp_path_factory.mktemp('hyperrep_zoo')
    members = build_zoo('small_cnn', train, val, directory, seeds=SEEDS,
                        recipe=RECIPE, init='default', test_set=test,
                        keep_epochs=True, progress=False, dataset='digits')
    return directory, members


@pytest.fixture(scope='session')
def hyper(zoo):
    """A hyper-representation fit briefly on the zoo (one member held
    out)."""
    return HyperRepresentation.fit(
        zoo[0], 'small_cnn', epochs=40, batch_size=4, lr=3e-3, permute=False,
        holdout_fraction=0.2, model_options=dict(d_model=32, latent_dim=4),
        seed=0)
