import pytest
import torch

from ghnlib.errors import GhnlibError
from ghnlib.models import get_model
from ghnlib.init import initialize, list_initializers


def test_hyperrep_scheme_initialises_through_the_registry(hyper, tmp_path):
    assert 'hyperrep' in list_initializers()
    hyper.save(tmp_path)
    model = initialize(get_model('small_cnn'), f'hyperrep:{tmp_path}',
                       generator=torch.Generator().manual_seed(5),
                       input_shape=(1, 1, 28, 28))
    expected = hyper.sample(1, torch.Generator().manual_seed(5))[0]
    for name, param in model.named_parameters():
        assert torch.equal(param.detach(), expected[name]), name
    again = initialize(get_model('small_cnn'), f'hyperrep:{tmp_path}',
                       generator=torch.Generator().manual_seed(6))
    assert not torch.equal(again.features[0].weight, model.features[0].weight)


def test_hyperrep_scheme_errors_name_the_problem(hyper, tmp_path):
    with pytest.raises(GhnlibError, match="hyperrep:DIR"):
        initialize(get_model('small_cnn'), 'hyperrep')
    with pytest.raises(GhnlibError, match='no hyper-representation'):
        initialize(get_model('small_cnn'), f'hyperrep:{tmp_path / "none"}')
    hyper.save(tmp_path)
    with pytest.raises(GhnlibError, match='small_cnn'):
        initialize(get_model('small_cnn', num_classes=3),
                   f'hyperrep:{tmp_path}')
