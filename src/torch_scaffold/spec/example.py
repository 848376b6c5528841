"""`scaffold spec example`: the default spec as YAML, with a comment above every field.

Generated from the schema metadata, so it cannot drift from it; a test loads it back and
compares with `Spec()`.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from torch_scaffold.spec.introspect import FieldInfo, fields_of
from torch_scaffold.spec.messages import show_number
from torch_scaffold.spec.schema import Spec

HEADER = """\
# torch-scaffold model specification (`scaffold spec example` prints this file).
# Only `name` is required: delete any other line to get the default shown here.
# Check a spec with `scaffold spec check FILE`; docs/spec.md describes every field.
"""
WIDTH = 96


def example_yaml() -> str:
    lines = HEADER.splitlines()
    _section(Spec, 0, lines)
    return "\n".join(lines) + "\n"


def _section(cls: type, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for info in fields_of(cls):
        if info.kind == "section" or indent == 0:
            lines.append("")
        if info.kind == "section":
            lines.extend(_comment(pad, info.doc))
            lines.append(f"{pad}{info.name}:")
            _section(info.section, indent + 2, lines)
        else:
            lines.extend(_comment(pad, field_note(info)))
            lines.append(f"{pad}{info.name}: {yaml_value(info.default)}")


def _comment(pad: str, text: str) -> list[str]:
    return [f"{pad}# {line}" for line in textwrap.wrap(text, WIDTH - len(pad) - 2)]


def field_note(info: FieldInfo) -> str:
    """The field's doc plus what it accepts, as one sentence list."""
    parts = [info.doc]
    allowed = allowed_text(info)
    if allowed:
        parts.append(allowed + ".")
    if info.required:
        parts.append("Required.")
    return " ".join(parts)


def allowed_text(info: FieldInfo) -> str:
    """'One of: a, b' / 'Range: > 0, <= 10' / list length, in words; '' when anything goes."""
    parts = []
    if info.choices:
        parts.append("One of: " + ", ".join(str(c) for c in info.choices))
    bounds = []
    if info.min is not None:
        bounds.append(f"{'>' if info.exclusive_min else '>='} {show_number(info.min)}")
    if info.max is not None:
        bounds.append(f"{'<' if info.exclusive_max else '<='} {show_number(info.max)}")
    if bounds:
        parts.append(("Each item " if info.kind == "list" else "Range: ") + ", ".join(bounds))
    if info.kind == "list" and (info.min_items or info.max_items):
        if info.min_items == info.max_items:
            parts.append(f"exactly {info.min_items} items")
        else:
            parts.append(f"{info.min_items or 0} to {info.max_items} items")
    if info.max_length is not None:
        what = "each item" if info.kind == "list" else "text"
        lines = "" if info.multiline else "one line, "
        parts.append(f"{what}: {lines}{info.min_length or 0} to {info.max_length} characters")
    if info.optional:
        parts.append("may be null")
    return "; ".join(parts)


def yaml_value(value: Any) -> str:
    """A default as YAML that reads back as the same Python value."""
    if isinstance(value, tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        # YAML 1.1 (PyYAML) reads `1e-05` as text; `1.0e-05` is a float everywhere
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, int):
        return str(value)
    dumped = yaml.safe_dump(value, width=10**6, allow_unicode=True)
    return dumped.removesuffix("\n...\n").removesuffix("\n")
