import pytest

from ghnlib.errors import GhnlibError, UnknownModelError
from ghnlib.utils.registry import Registry


def test_register_get_and_list():
    registry = Registry('widget')

    @registry.register()
    def beta():
        return 'b'

    registry.register('alpha', len, arity=1)
    assert registry.names() == ['alpha', 'beta']
    assert registry.names('a*') == ['alpha']
    assert registry.get('beta') is beta
    assert registry.entry('alpha').metadata == {'arity': 1}
    assert 'alpha' in registry and 'gamma' not in registry and 3 not in registry
    assert list(registry) == ['alpha', 'beta'] and len(registry) == 2


def test_unknown_names_suggest_close_ones_and_use_the_error_type():
    registry = Registry('model', error=UnknownModelError,
                        hint='See list_models().')
    registry.register('resnet20', object())
    with pytest.raises(UnknownModelError, match="'resnet2'.*'resnet20'.*"
                       'See list_models'):
        registry.get('resnet2')
    plain = Registry('dataset')
    plain.register('digits', object())
    with pytest.raises(GhnlibError, match='Known datasets: digits'):
        plain.get('mnist')


def test_duplicates_and_empty_names_are_refused():
    registry = Registry('widget')
    registry.register('a', 1)
    with pytest.raises(ValueError, match="'a' is already registered"):
        registry.register('a', 2)
    with pytest.raises(ValueError, match='non-empty'):
        registry.register('', 3)
    assert registry.get('a') == 1


def test_normalised_names_and_unregister():
    registry = Registry('dataset', normalize=str.lower)
    registry.register('CIFAR10', 'loader')
    assert registry.get('cifar10') == registry.get('Cifar10') == 'loader'
    assert registry.unregister('cifar10') == 'loader'
    assert registry.names() == []
    with pytest.raises(GhnlibError):
        registry.unregister('cifar10')
