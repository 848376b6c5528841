"""A `Node` tree -> the typed, frozen `Spec`, checking keys, types, ranges and choices.

Fields are checked in the order they were written, and every field is checked: one bad
field does not hide the next, so all of a file's problems are reported in one run, in file
order. Every error names the field path and the line it was written on. A field that fails
keeps its default in the built spec and is listed in `Locations.invalid`, so the
cross-field rules can skip what depends on it (see rules.check_rules).
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any

import yaml

from torch_scaffold.errors import SpecError, each_error, spec_errors
from torch_scaffold.spec.introspect import FieldInfo, field_map, walk
from torch_scaffold.spec.messages import (
    did_you_mean,
    one_of,
    show_number,
    show_text,
    show_value,
)
from torch_scaffold.spec.schema import Spec
from torch_scaffold.spec.yaml_nodes import Node, Origin, yaml11_number_problem

# PyYAML follows YAML 1.1, which reads `3e-4` (no dot) as a string; we read it as the number
# the user meant, but only when it was written without quotes.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")
_RESOLVER = yaml.resolver.Resolver()
_ACCEPTS = {"bool": ("bool",), "int": ("int",), "float": ("int", "float"), "str": ()}
_KIND_NAMES = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text"}
_PLURAL_NAMES = {"bool": "booleans", "int": "whole numbers", "float": "numbers", "str": "strings"}


class Locations:
    """Where each field of a loaded spec was written, for cross-field messages."""

    def __init__(self, origin: Origin):
        self.origin = origin
        self.nodes: dict[str, Node] = {}
        # fields (dotted paths) that failed their own checks: the spec holds their defaults
        self.invalid: set[str] = set()

    def is_set(self, path: str) -> bool:
        return path in self.nodes

    def where(self, path: str) -> str:
        node = self.nodes.get(path)
        return node.where(path) if node else self.origin.where(None, path)

    def describe(self, path: str) -> str:
        """`path` plus where it was set, for naming the other field of a conflict."""
        node = self.nodes.get(path)
        if node is None:
            return f"{path} (default)"
        if not node.origin.is_file:
            return f"{path} (--set)"
        return f"{path} (line {node.line})" if node.line else path


def build_spec(tree: Node | None, origin: Origin) -> tuple[Spec, Locations, list[SpecError]]:
    """Build the top-level Spec; `tree` is None for a document with no content.

    Returns the spec, where each field was written, and every problem found, in the order
    the fields were written (empty when the spec is valid). A top level that is not a
    mapping is raised at once: nothing else can be checked then.
    """
    locations = Locations(origin)
    errors: list[SpecError] = []
    spec = build_section(Spec, tree, "", locations, errors)
    for info in field_map(Spec).values():
        if info.required and not locations.is_set(info.name):
            errors.append(
                SpecError(
                    "missing required field",
                    where=origin.where(None, info.name),
                    hint=f"add a line such as `{info.name}: my-project` at the top of the spec",
                )
            )
            locations.invalid.add(info.name)
    return spec, locations, errors


def build_section(
    cls: type, node: Node | None, path: str, locations: Locations, errors: list[SpecError]
) -> Any:
    """The section `cls` from `node`. A node that is not a mapping is raised; a problem in
    one of its fields is added to `errors` and the field keeps its default."""
    if node is None or node.kind == "null":
        return cls()
    if node.kind != "map":
        where = node.where(path)
        if not path:
            raise SpecError(
                f"a spec must be a mapping of fields such as `name: ...`, got"
                f" {show_value(node.kind, node.value, node.text)}",
                where=where,
                hint="`scaffold spec example` shows the expected layout",
            )
        raise SpecError(
            f"expected a mapping of fields, got {show_value(node.kind, node.value, node.text)}",
            where=where,
            hint=f"indent the fields of `{path}` under it, e.g. `{path}:` then"
            f" `  {next(iter(field_map(cls)))}: ...`",
        )
    fields = field_map(cls)
    values = {}
    for key, entry in node.value.items():
        child = f"{path}.{key}" if path else key
        info = fields.get(key)
        if info is None:
            errors.append(
                SpecError(
                    f"unknown field {show_text(key)}" + (f" in {path}" if path else ""),
                    where=entry.where(child),
                    hint=_unknown_key_hint(cls, key, path),
                )
            )
            continue
        locations.nodes[child] = entry.node
        try:
            if info.kind == "section":
                values[key] = build_section(info.section, entry.node, child, locations, errors)
            else:
                values[key] = build_value(info, entry.node, child)
        except SpecError as err:
            errors.extend(each_error(err))
            locations.invalid.add(child)
    return cls(**values)


def _unknown_key_hint(cls: type, key: str, path: str) -> str:
    close = did_you_mean(key, field_map(cls))
    if close:
        return f"did you mean `{close}`?"
    # a known field written in the wrong section, e.g. `lr` at the top level
    elsewhere = [p for p, _ in walk(Spec) if p.rsplit(".", 1)[-1] == key]
    if not elsewhere:
        leaves = {p.rsplit(".", 1)[-1]: p for p, _ in walk(Spec)}
        near = did_you_mean(key, leaves)
        elsewhere = [leaves[near]] if near else []
    if elsewhere:
        return f"did you mean `{elsewhere[0]}`? (it belongs in another section)"
    return f"fields{' of ' + path if path else ''}: {one_of(field_map(cls))}"


def build_value(info: FieldInfo, node: Node, path: str) -> Any:
    if node.kind == "null":
        if info.optional:
            return None
        raise SpecError(
            f"expected {_expected(info)}, got nothing (null)",
            where=node.where(path),
            hint=f"give a value, or delete the line to use the default {_show_default(info)}",
        )
    if info.kind == "map":
        return build_mapping(info, node, path)
    if info.kind != "list":
        return build_scalar(info, info.kind, node, path)
    if node.kind != "seq":
        raise SpecError(
            f"expected {_expected(info)}, got {show_value(node.kind, node.value, node.text)}",
            where=node.where(path),
            hint=(
                f"write a list in brackets, e.g. {_show_default(info)}"
                if info.default or info.choices
                else f"write a list in brackets, e.g. [{_short(node.text)}]"
            ),
        )
    count = len(node.value)
    if info.min_items is not None and count < info.min_items:
        raise SpecError(
            (
                f"needs at least {_items(info.min_items)}, got {count}"
                if info.min_items != info.max_items
                else f"needs exactly {_items(info.min_items)}, got {count}"
            ),
            where=node.where(path),
            hint=_list_hint(info),
        )
    if info.max_items is not None and count > info.max_items:
        raise SpecError(
            (
                f"has {count} items; at most {info.max_items} allowed"
                if info.min_items != info.max_items
                else f"needs exactly {_items(info.max_items)}, got {count}"
            ),
            where=node.where(path),
            hint=_list_hint(info),
        )
    items, errors = [], []
    for i, item in enumerate(node.value):  # every bad item is reported, not only the first
        try:
            items.append(build_scalar(info, info.item, item, f"{path}[{i}]"))
        except SpecError as err:
            errors.append(err)
    if errors:
        raise spec_errors(errors)
    return tuple(items)


def build_mapping(info: FieldInfo, node: Node, path: str) -> dict[str, Any]:
    """A mapping of names (Python identifiers: they become keyword arguments) to plain
    values: numbers, text, booleans, null, or lists of those."""
    if node.kind != "map":
        raise SpecError(
            f"expected a mapping of names to values, got"
            f" {show_value(node.kind, node.value, node.text)}",
            where=node.where(path),
            hint=f"write e.g. `{path.rsplit('.', 1)[-1]}: {{hidden: 64, dropout: 0.1}}`",
        )
    if info.max_items is not None and len(node.value) > info.max_items:
        raise SpecError(
            f"has {len(node.value)} entries; at most {info.max_items} allowed",
            where=node.where(path),
            hint="pass fewer arguments",
        )
    values, errors = {}, []
    for key, entry in node.value.items():  # every bad entry is reported, not only the first
        child = f"{path}.{key}"
        try:
            if not key.isidentifier() or keyword.iskeyword(key):
                raise SpecError(
                    f"{show_text(key)} is not a Python name, so it cannot be an argument",
                    where=entry.where(path),
                    hint="use letters, digits and underscores, not starting with a digit",
                )
            values[key] = _plain_value(entry.node, child)
        except SpecError as err:
            errors.append(err)
    if errors:
        raise spec_errors(errors)
    return values


def _plain_value(node: Node, path: str) -> Any:
    if node.kind == "seq":
        return [_plain_value(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
    if node.kind == "str" and node.plain and _EXPONENT_NUMBER.fullmatch(node.value):
        return float(node.value)  # `3e-4` is the number the user meant
    if node.kind in ("str", "int", "bool", "null"):
        return node.value
    if node.kind == "float":
        if not math.isfinite(node.value):
            raise SpecError(
                f"must be a finite number, got {_shown(node)}",
                where=node.where(path),
                hint="write a finite number",
            )
        return node.value
    raise SpecError(
        f"expected a number, text, true/false, null or a list of those, got"
        f" {show_value(node.kind, node.value, node.text)}",
        where=node.where(path),
        hint="pass plain values; build nested objects inside your module",
    )


def build_scalar(info: FieldInfo, kind: str, node: Node, path: str) -> Any:
    value = _convert(info, kind, node, path)
    if kind in ("int", "float"):
        _check_range(info, value, node, path)
    elif kind == "str":
        _check_text(info, value, node, path)
    return value


def _convert(info: FieldInfo, kind: str, node: Node, path: str) -> Any:
    got = show_value(node.kind, node.value, node.text)
    if node.kind == "str" and node.plain and _EXPONENT_NUMBER.fullmatch(node.value):
        got = node.value  # a number the user wrote, not text
    if kind == "bool" and node.kind == "bool":
        return node.value
    if kind == "int" and node.kind == "int":
        return node.value
    if kind == "float":
        number = None
        if node.kind in ("int", "float") or (
            node.kind == "str" and node.plain and _EXPONENT_NUMBER.fullmatch(node.value)
        ):
            try:
                number = float(node.value)
            except OverflowError:  # an integer beyond any float: out of range, say so
                number = math.inf if node.value > 0 else -math.inf
                _check_range(info, number, node, path)
        if number is not None:
            if not math.isfinite(number):
                raise SpecError(
                    f"must be a finite number, got {_shown(node)}",
                    where=node.where(path),
                    hint=_range_hint(info),
                )
            return number
    if kind == "str":
        if node.kind == "str":
            return node.value
        # `precision: 32` means the choice "32"; YAML reads it as a number
        if node.kind == "int" and info.choices and str(node.value) in info.choices:
            return str(node.value)
        if info.choices and node.kind in ("int", "float", "bool"):
            _check_text(info, node.text, node, path)  # reports "must be one of ..."
    raise SpecError(
        f"expected {_KIND_NAMES[kind]}, got {got}",
        where=node.where(path),
        hint=_type_hint(info, kind, node),
    )


def _type_hint(info: FieldInfo, kind: str, node: Node) -> str:
    if node.kind == "str" and not node.plain and _unquoted_kind(node.value) in _ACCEPTS[kind]:
        if yaml11_number_problem(node.value, _unquoted_kind(node.value)) is not None:
            # without quotes `010` would be octal 8, `1:30` base-60 90
            if ":" in node.value:
                return "write the number itself, without quotes"
            return (
                f"write {int(node.value.replace('_', ''), 10)} without quotes or the leading zero"
            )
        return "remove the quotes around the value"
    if kind == "str":
        if info.choices:
            return f"choose one of: {one_of(info.choices)}"
        return (
            f'put the text in quotes, e.g. "{_short(node.text)}"'
            if node.text
            else "write some text"
        )
    if kind == "bool":
        return "write true or false"
    if kind == "int":
        return f"write a whole number without a decimal point or exponent, such as {_example(info)}"
    return f"write a number such as {_example(info)}"


def _short(text: str) -> str:
    """`text` when it is short and printable (fit to quote in a hint), else '...'."""
    return text if text and text.isprintable() and len(text) <= 20 else "..."


def _shown(node: Node) -> str:
    """A number as written, shortened: the message stays one readable line."""
    text = node.text or repr(node.value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _unquoted_kind(text: str) -> str:
    """What YAML would read `text` as without quotes: 'int', 'float', 'bool', 'str', ..."""
    if _EXPONENT_NUMBER.fullmatch(text):
        return "float"
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)).rsplit(":", 1)[-1]


def _check_range(info: FieldInfo, value: float, node: Node, path: str) -> None:
    shown = _shown(node)
    low, high = info.min, info.max
    if low is not None and (value <= low if info.exclusive_min else value < low):
        op = ">" if info.exclusive_min else ">="
        raise SpecError(
            f"must be {op} {_num(low)}, got {shown}",
            where=node.where(path),
            hint=_range_hint(info),
        )
    if high is not None and (value >= high if info.exclusive_max else value > high):
        op = "<" if info.exclusive_max else "<="
        raise SpecError(
            f"must be {op} {_num(high)}, got {shown}",
            where=node.where(path),
            hint=_range_hint(info),
        )


def _check_text(info: FieldInfo, value: str, node: Node, path: str) -> None:
    if info.choices and value not in info.choices:
        close = did_you_mean(value, info.choices)
        raise SpecError(
            f"must be one of {one_of(info.choices)}, got {show_text(value)}",
            where=node.where(path),
            hint=f"did you mean `{close}`?" if close else f"choose one of: {one_of(info.choices)}",
        )
    if not info.multiline and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SpecError(
            "must be a single line without control characters",
            where=node.where(path),
            hint="remove line breaks, tabs and other control characters",
        )
    if info.min_length and not value.strip():
        raise SpecError(
            "must not be empty", where=node.where(path), hint="write a value or delete the line"
        )
    if info.max_length is not None and len(value) > info.max_length:
        raise SpecError(
            f"is too long ({len(value)} characters; at most {info.max_length})",
            where=node.where(path),
            hint="shorten it",
        )


def _range_hint(info: FieldInfo) -> str:
    parts = []
    if info.min is not None:
        parts.append(f"{'>' if info.exclusive_min else '>='} {_num(info.min)}")
    if info.max is not None:
        parts.append(f"{'<' if info.exclusive_max else '<='} {_num(info.max)}")
    text = "use a value " + " and ".join(parts) if parts else "use a number"
    return f"{text}, such as {_example(info)}"


def _example(info: FieldInfo) -> str:
    """One valid scalar for `info` (its default, or its default's first item)."""
    value = info.default
    if isinstance(value, tuple) and value:
        value = value[0]
    if value is None or isinstance(value, tuple):
        if info.choices:
            return str(info.choices[0])
        value = 1 if info.min is None else max(1, info.min)
    return _num(value)


def _list_hint(info: FieldInfo) -> str:
    if info.default:
        return f"write a list such as {_show_default(info)}"
    low, high = info.min_items or 0, info.max_items
    size = f"{low} to {high} items" if high is not None else f"at least {_items(low)}"
    return f"write a list of {size}, or delete the line to use the default"


def _expected(info: FieldInfo) -> str:
    if info.kind == "list":
        return f"a list of {_PLURAL_NAMES[info.item]}"
    if info.kind == "map":
        return "a mapping of names to values"
    return _KIND_NAMES[info.kind]


def _items(count: int) -> str:
    return f"{count} item" + ("" if count == 1 else "s")


def _num(value: Any) -> str:
    return show_number(value)


def _show_default(info: FieldInfo) -> str:
    value = info.default
    if info.kind == "list" and not value:
        return f"[{_example(info)}]"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
