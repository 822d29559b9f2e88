import pytest
import torch
import torch.nn as nn

from ghnlib.errors import GhnlibError
from ghnlib.init import (SCHEMES, get_initializer, initialize,
                         list_initializers, register_initializer)


def test_registry_lists_the_builtin_schemes():
    assert {'he', 'xavier', 'default', 'ghn', 'noise-ghn'} <= set(
        list_initializers())
    assert list_initializers() == sorted(list_initializers())
    assert repr(get_initializer('he')) == "Initializer('he')"


def test_unknown_spec_names_the_known_schemes():
    with pytest.raises(GhnlibError) as info:
        get_initializer('hee')
    message = str(info.value)
    assert "'hee'" in message and "Did you mean 'he'" in message
    for usage in ('default', 'ghn:PATH', 'noise-ghn:PATH', 'xavier'):
        assert usage in message


def test_arguments_missing_or_unexpected():
    with pytest.raises(GhnlibError, match="needs an argument.*'ghn:PATH'"):
        get_initializer('ghn')
    with pytest.raises(GhnlibError, match="needs an argument"):
        get_initializer('noise-ghn:')
    with pytest.raises(GhnlibError, match="takes no argument.*use 'he'"):
        get_initializer('he:fan_out')
    with pytest.raises(GhnlibError, match='must be a string'):
        get_initializer(None)
    with pytest.raises(GhnlibError, match='torch.Generator'):
        initialize(nn.Linear(2, 2), 'he', generator=0)


def test_register_a_scheme_with_an_argument():
    calls = []

    @register_initializer('test-constant', argument='VALUE')
    def constant(value):
        def init(model, generator, *, input_shape):
            calls.append(input_shape)
            for p in model.parameters():
                nn.init.constant_(p, float(value))
            return model
        return init

    try:
        model = initialize(nn.Linear(2, 2), 'test-constant:0.5',
                           input_shape=(1, 2))
        assert torch.equal(model.weight, torch.full((2, 2), 0.5))
        assert calls == [(1, 2)]
        assert 'test-constant' in list_initializers()
        with pytest.raises(ValueError, match='already registered'):
            register_initializer('test-constant')(constant)
    finally:
        SCHEMES.unregister('test-constant')


def test_register_rejects_duplicates_and_bad_names():
    with pytest.raises(ValueError, match="'he' is already registered"):
        register_initializer('he')(lambda model, generator, **_: model)
    with pytest.raises(ValueError, match="no ':'"):
        register_initializer('a:b')
