"""Read the schema dataclasses into plain field descriptions.

The loader, the JSON Schema, the annotated example and the docs all walk the same
`FieldInfo` list, so none of them can disagree with schema.py about a field.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

SCALAR_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class FieldInfo:
    name: str
    kind: str  # "bool", "int", "float", "str", "list", "map" or "section"
    item: str | None  # lists: the kind of each item
    optional: bool  # null is accepted and means "derive it" (see the doc)
    section: type | None  # sections: the nested dataclass
    default: Any
    meta: dict

    @property
    def doc(self) -> str:
        return self.meta["doc"]

    def __getattr__(self, key: str) -> Any:
        # choices, min, max, exclusive_min, ... straight from the field metadata
        try:
            return self.__dict__["meta"][key]
        except KeyError:
            raise AttributeError(key) from None


def _describe(name: str, hint: Any) -> tuple[str, str | None, bool, type | None]:
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        (hint,) = [a for a in args if a is not type(None)]
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if len(args) != 2 or args[1] is not Ellipsis or args[0] not in SCALAR_KINDS:
            raise TypeError(f"{name}: lists must be tuple[<scalar>, ...]")
        return "list", SCALAR_KINDS[args[0]], optional, None
    if typing.get_origin(hint) is dict:
        # name -> plain value (numbers, text, booleans, null, lists of them): e.g. kwargs
        if args[0] is not str:
            raise TypeError(f"{name}: mappings must be dict[str, ...]")
        return "map", None, optional, None
    if dataclasses.is_dataclass(hint):
        return "section", None, optional, hint
    if hint in SCALAR_KINDS:
        return SCALAR_KINDS[hint], None, optional, None
    raise TypeError(f"{name}: unsupported field type {hint!r}")


@functools.cache
def fields_of(cls: type) -> tuple[FieldInfo, ...]:
    """The fields of one schema dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        kind, item, optional, section = _describe(f"{cls.__name__}.{f.name}", hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        infos.append(FieldInfo(f.name, kind, item, optional, section, default, dict(f.metadata)))
    return tuple(infos)


def field_map(cls: type) -> dict[str, FieldInfo]:
    return {f.name: f for f in fields_of(cls)}


def walk(cls: type, prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every field below `cls` as (dotted path, info), sections before their fields."""
    for info in fields_of(cls):
        path = f"{prefix}{info.name}"
        yield path, info
        if info.kind == "section":
            yield from walk(info.section, path + ".")


def lookup(cls: type, path: str) -> FieldInfo | None:
    """The field at a dotted path, or None."""
    info = None
    for part in path.split("."):
        if cls is None:
            return None
        info = field_map(cls).get(part)
        if info is None:
            return None
        cls = info.section
    return info
