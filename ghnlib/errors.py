"""Errors raised by ghnlib on bad user input."""

__all__ = ['GhnlibError', 'GraphConversionError', 'UnknownModelError']


class GhnlibError(Exception):
    """Base class of every error ghnlib raises on user input."""


class GraphConversionError(GhnlibError):
    r"""A model could not be turned into an :class:`~ghnlib.graph.ArchGraph`.

    Args:
        module (str): The qualified path of the module at fault (``''`` is the
            model itself).
        cause (str): What went wrong and what to do about it.
        model_type (str, optional): The class name of the model.
            (default: :obj:`None`)
    """
    def __init__(self, module: str, cause: str, model_type: str = None):
        self.module = module
        self.cause = cause
        where = f"module '{module}'" if module else 'the model itself'
        if model_type:
            where += f' (in {model_type})'
        super().__init__(f'Cannot convert {where}: {cause}')


class UnknownModelError(GhnlibError, KeyError):
    """A model name is not in the registry."""
    def __str__(self) -> str:
        return str(self.args[0])
