r"""How the ``ghnlib`` command turns dataclasses into flags and strings into
values: a :class:`tyro.constructors.ConstructorRegistry` with

- one rule for every ghnlib dataclass: a flag per field, named after it
  (``calibration_batches`` → ``--calibration-batches``), its help the
  field's entry in the class docstring's ``Args:`` section, its default the
  field's (or the preset instance's), plus the older names in
  :obj:`ALIASES`;
- comma-separated lists for sequences of numbers or names
  (``--milestones 15,20``, ``--inits he,ghn``; an empty string is the empty
  list);
- :obj:`Shape` (``1,3,32,32`` or ``1x3x32x32``) and :obj:`SeedList`
  (``0-9,20,31``) for the fields that take them.
"""
import collections.abc
import dataclasses
import re
import typing
from typing import Any, Dict, List, Optional, Tuple

import docstring_parser
import tyro
from tyro.constructors import (MISSING_NONPROP, ConstructorRegistry,
                               PrimitiveConstructorSpec, PrimitiveTypeInfo,
                               StructConstructorSpec, StructFieldSpec,
                               StructTypeInfo)

__all__ = ['CONSTRUCTORS', 'ALIASES', 'Shape', 'SeedList', 'field_docs']

#: Flags of earlier releases whose names differ from the field they set.
ALIASES: Dict[str, Tuple[str, ...]] = {
    'cifar10c_root': ('--cifar10c', ),
    'hidden_channels': ('--hidden', ),
}

CONSTRUCTORS = ConstructorRegistry()

_ITEM_TYPES = (int, float, str)
_SEQUENCES = (tuple, list, collections.abc.Sequence)
_ROLE = re.compile(r':[a-z]+:`~?([^`]*)`')


def _clean(text: str) -> str:
    # Sphinx roles read as their text on a terminal, and the "(default: …)"
    # a docstring ends with would repeat the default the help prints itself.
    text = _ROLE.sub(r'\1', text)
    start = text.rfind('(default:')
    if start >= 0:
        text = text[:start]
    return ' '.join(text.split())


def field_docs(cls: type) -> Dict[str, str]:
    """The help of each documented field of :obj:`cls`: its entry in the
    class docstring's ``Args:`` section, Sphinx markup and the trailing
    ``(default: …)`` removed."""
    docs = {}
    for param in docstring_parser.parse(cls.__doc__ or '').params:
        docs[param.arg_name] = _clean(param.description or '')
    return docs


def _field_default(field: dataclasses.Field, parent_default: Any) -> Any:
    if dataclasses.is_dataclass(parent_default) and \
            not isinstance(parent_default, type):
        return getattr(parent_default, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return MISSING_NONPROP


@CONSTRUCTORS.struct_rule
def dataclass_flags(info: StructTypeInfo) -> Optional[StructConstructorSpec]:
    """Every field of a ghnlib dataclass as a flag, documented from the
    class docstring; a nested dataclass contributes its own fields."""
    cls = info.type
    # tyro describes some of its own structures with dataclasses too; those
    # keep its rules.
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__.startswith('ghnlib.')):
        return None
    hints = typing.get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    fields = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        annotation = hints[field.name]
        if field.name in ALIASES:
            annotation = typing.Annotated[annotation, tyro.conf.arg(
                aliases=ALIASES[field.name])]
        fields.append(StructFieldSpec(
            name=field.name, type=annotation,
            default=_field_default(field, info.default),
            helptext=docs.get(field.name)))
    return StructConstructorSpec(instantiate=cls, fields=tuple(fields))


def _item_type(info: PrimitiveTypeInfo) -> Optional[type]:
    if info.type_origin not in _SEQUENCES:
        return None
    args = typing.get_args(info.type)
    if info.type_origin is tuple and (len(args) != 2 or args[1] is not ...):
        return None
    if len(args) < 1 or args[0] not in _ITEM_TYPES:
        return None
    return args[0]


@CONSTRUCTORS.primitive_rule
def comma_separated(info: PrimitiveTypeInfo
                    ) -> Optional[PrimitiveConstructorSpec]:
    """Sequences of numbers or names as one comma-separated argument."""
    item = _item_type(info)
    if item is None:
        return None
    container = list if info.type_origin is list else tuple
    metavar = f'{item.__name__.upper()},...'

    def from_strings(strings: List[str]):
        try:
            return container(item(text.strip())
                             for text in strings[0].split(',')
                             if text.strip())
        except ValueError:
            raise ValueError(f'{strings[0]!r} is not a list of '
                             f'{item.__name__}s; write it like {metavar}'
                             ) from None

    return PrimitiveConstructorSpec(
        nargs=1, metavar=metavar, instance_from_str=from_strings,
        is_instance=lambda value: isinstance(value, (tuple, list)),
        str_from_instance=lambda value: [','.join(str(v) for v in value)])


def _shape(strings: List[str]) -> Tuple[int, ...]:
    text = strings[0]
    try:
        shape = tuple(int(s) for s in text.replace('x', ',').split(','))
    except ValueError:
        raise ValueError(f"'{text}' is not a shape; write it like "
                         '1,3,32,32') from None
    if min(shape) < 1:
        raise ValueError(f"'{text}' is not a shape; sizes must be positive")
    return shape


def _seed_list(strings: List[str]) -> List[int]:
    text = strings[0]
    seeds: List[int] = []
    for part in text.split(','):
        first, dash, last = part.strip().partition('-')
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f'{part!r} is not a seed or a range like '
                             '0-9') from None
        if high < low:
            raise ValueError(f'empty seed range {part!r}')
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds repeat in {text!r}')
    return seeds


#: A tensor shape, ``1,3,32,32`` or ``1x3x32x32``.
Shape = typing.Annotated[Tuple[int, ...], PrimitiveConstructorSpec(
    nargs=1, metavar='N,C,H,W', instance_from_str=_shape,
    is_instance=lambda value: isinstance(value, tuple),
    str_from_instance=lambda value: [','.join(str(v) for v in value)])]

#: Seeds and ranges of seeds, ``0-9,20,31`` → ``[0, 1, …, 9, 20, 31]``,
#: distinct, in order.
SeedList = typing.Annotated[List[int], PrimitiveConstructorSpec(
    nargs=1, metavar='LIST', instance_from_str=_seed_list,
    is_instance=lambda value: isinstance(value, list),
    str_from_instance=lambda value: [','.join(str(v) for v in value)])]
