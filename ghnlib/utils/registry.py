r"""A name → object registry, the one pattern behind ghnlib's models,
initialisation schemes and datasets."""
import dataclasses
import difflib
import fnmatch
from typing import (Any, Callable, Dict, Generic, Iterator, List, Mapping,
                    Optional, Type, TypeVar)

from ghnlib.errors import GhnlibError

__all__ = ['Registry', 'RegistryEntry']

T = TypeVar('T')


@dataclasses.dataclass(frozen=True)
class RegistryEntry(Generic[T]):
    r"""One registered object: its name, the object and the metadata given
    when it was registered."""
    name: str
    obj: T
    metadata: Mapping[str, Any]


class Registry(Generic[T]):
    r"""A registry of named objects (builders, schemes, loaders), filled by
    a decorator in the module that defines each object, as timm's
    :obj:`register_model`:

    .. code-block:: python

        MODELS = Registry('model', hint='see ghnlib.models.list_models()')

        @MODELS.register('resnet20')
        def resnet20(*, num_classes=10):
            ...

        MODELS.get('resnet20')(num_classes=100)

    Args:
        kind (str): What is registered, in the singular, for messages
            (*e.g.*, :obj:`'model'`).
        error (type, optional): The exception :meth:`get` raises for an
            unknown name. (default: :class:`~ghnlib.GhnlibError`)
        hint (str, optional): A sentence appended to that error, saying
            where to look. (default: :obj:`''`, the known names are listed)
        normalize (Callable[[str], str], optional): Applied to every name
            before it is stored or looked up, *e.g.*, :obj:`str.lower`.
            (default: :obj:`None`)
    """
    def __init__(self, kind: str, *, error: Type[Exception] = GhnlibError,
                 hint: str = '',
                 normalize: Optional[Callable[[str], str]] = None):
        self.kind = kind
        self.error = error
        self.hint = hint
        self.normalize = normalize
        self._entries: Dict[str, RegistryEntry[T]] = {}

    def _key(self, name: str) -> str:
        return self.normalize(name) if self.normalize else name

    def register(self, name: Optional[str] = None, obj: Optional[T] = None,
                 **metadata: Any) -> Any:
        r"""Adds :obj:`obj` under :obj:`name` with its :obj:`metadata`; with
        no :obj:`obj`, returns a decorator that registers what it decorates
        (under its :obj:`__name__` when :obj:`name` is :obj:`None`).

        Raises:
            ValueError: If the name is empty or already registered.
        """
        def add(value: T) -> T:
            key = self._key(value.__name__ if name is None else name)
            if not key:
                raise ValueError(f'a {self.kind} name must be non-empty')
            if key in self._entries:
                previous = self._entries[key].obj
                where = getattr(previous, '__module__', '?')
                raise ValueError(
                    f"A {self.kind} named '{key}' is already registered (by "
                    f"{where}.{getattr(previous, '__qualname__', previous)})")
            self._entries[key] = RegistryEntry(key, value, dict(metadata))
            return value

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> T:
        r"""Removes :obj:`name` and returns its object (see :meth:`entry` for
        unknown names)."""
        return self._entries.pop(self.entry(name).name).obj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, pattern: Optional[str] = None) -> List[str]:
        r"""The sorted registered names, those matching the case-sensitive
        :mod:`fnmatch` glob :obj:`pattern` if one is given."""
        names = sorted(self._entries)
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def entry(self, name: str) -> RegistryEntry[T]:
        r"""The entry of :obj:`name`.

        Raises:
            Exception: :obj:`error` if nothing is registered under the name,
                with the closest names and :obj:`hint`.
        """
        key = self._key(name) if isinstance(name, str) else name
        try:
            return self._entries[key]
        except (KeyError, TypeError):
            pass
        close = (difflib.get_close_matches(key, list(self._entries), n=3)
                 if isinstance(key, str) else [])
        suggestion = (f" Did you mean {', '.join(repr(c) for c in close)}?"
                      if close else '')
        hint = self.hint or f"Known {self.kind}s: {', '.join(self.names())}."
        raise self.error(f'Unknown {self.kind} {name!r}.{suggestion} {hint}')

    def get(self, name: str) -> T:
        r"""The object registered under :obj:`name` (see :meth:`entry`)."""
        return self.entry(name).obj

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.kind!r}, {len(self)} entries)'
