r"""Initialisation schemes by name: a registry that depends on nothing else
in ghnlib, filled by each scheme in the module that defines it (the standard
ones here; :obj:`ghn` / :obj:`noise-ghn` in :mod:`ghnlib.nn`, :obj:`vae` /
:obj:`vqvae` in :mod:`ghnlib.local`, :obj:`hyperrep` in
:mod:`ghnlib.hyperrep`)."""
from ghnlib.init.registry import (DEFAULT_INPUT_SHAPE, SCHEMES, InitFunction,
                                  Initializer, get_initializer, initialize,
                                  list_initializers, register_initializer)
from ghnlib.init.standard import default_init, he_init, xavier_init

__all__ = [
    'Initializer',
    'InitFunction',
    'DEFAULT_INPUT_SHAPE',
    'SCHEMES',
    'register_initializer',
    'list_initializers',
    'get_initializer',
    'initialize',
    'he_init',
    'xavier_init',
    'default_init',
]
