"""YAML text -> a tree of `Node`s that remember where each value was written.

PyYAML's safe loader does the parsing; we stop at its node graph (yaml.compose) and never
construct Python objects from tags. A pass over the parser events first refuses, with the line:
  - anchors and aliases: a spec never needs them, and they are how billion-laughs bombs work;
  - explicit tags other than the plain YAML types (`!!python/object`, `!custom`, `!!binary`);
  - nesting deeper than any spec needs (composing is recursive).
Converting the node graph then refuses duplicate keys (YAML would silently keep the last one),
merge keys, keys that are not strings, and the YAML 1.1 number forms that change a value without
a word: a leading zero is octal (`010` is 8), colons are base 60 (`1:30` is 90).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

from torch_scaffold.errors import SpecError
from torch_scaffold.spec.messages import show_text

_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
MAX_DEPTH = 32
# libyaml's C parser when PyYAML has it (about 10x faster); the same safe loader either way
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCT = SafeConstructor()
# YAML 1.1 (PyYAML) integers with a leading zero are octal; numbers with colons are base 60
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


@dataclass(frozen=True)
class Origin:
    """Where values came from: a file, or one `--set KEY=VALUE` option."""

    source: str  # the file name, or "--set KEY" for an override
    is_file: bool = True

    def where(self, line: int | None, path: str) -> str:
        if not self.is_file:
            return f"--set {path}" if path else self.source
        if line is None:
            return f"{self.source}: {path}" if path else self.source
        return f"{self.source}:{line}: {path}" if path else f"{self.source}:{line}"


@dataclass
class Node:
    """One YAML value. `value` is dict[str, Entry] for maps, list[Node] for lists."""

    kind: str  # map, seq, str, int, float, bool, null, timestamp
    value: Any
    origin: Origin
    line: int | None
    text: str = ""  # a scalar exactly as written
    plain: bool = True  # a scalar written without quotes

    def where(self, path: str) -> str:
        return self.origin.where(self.line, path)


@dataclass
class Entry:
    key_line: int | None
    node: Node
    key_origin: Origin | None = field(default=None)

    def where(self, path: str) -> str:
        origin = self.key_origin or self.node.origin
        return origin.where(self.key_line, path)


class _Refused(Exception):
    def __init__(self, message: str, mark: Any, hint: str):
        super().__init__(message)
        self.message, self.mark, self.hint = message, mark, hint


def _check_events(text: str) -> None:
    """Refuse aliases, anchors, unusual tags and deep nesting before anything is composed.

    A flat pass over the parser's events: no recursion, and an alias bomb is stopped at its
    first anchor, long before anything could expand.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, AliasEvent):
            raise _Refused(
                f"YAML aliases are not allowed in a spec (found *{event.anchor})",
                event.start_mark,
                "write the value out in full; anchors and aliases are refused for safety",
            )
        if not isinstance(event, (ScalarEvent, CollectionStartEvent)):
            if isinstance(event, CollectionEndEvent):
                depth -= 1
            continue
        if event.anchor is not None:
            raise _Refused(
                f"YAML anchors are not allowed in a spec (found &{event.anchor})",
                event.start_mark,
                "remove the anchor and write each value out in full",
            )
        tag = event.tag
        if tag not in (None, "!") and tag not in ALLOWED_TAGS:
            shown = "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag
            raise _Refused(
                f"YAML tag {shown} is not allowed in a spec",
                event.start_mark,
                "remove the tag; a spec holds only plain strings, numbers, booleans, lists"
                " and mappings",
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"nested more than {MAX_DEPTH} levels deep",
                    event.start_mark,
                    "a spec is at most a few levels deep; check the indentation",
                )


def _yaml_hint(problem: str, char: str) -> str:
    if char == "\t":
        return "YAML does not allow tabs for indentation; indent with spaces"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted, and nested keys must be indented"
    if "more than one YAML document" in problem:
        return "a spec is one YAML document; remove the extra '---' separator"
    if "expected ',' or" in problem:
        return "close the bracket that was opened, and separate its items with commas"
    if "end of stream" in problem or "quoted scalar" in problem:
        return "close the quote or bracket that was opened"
    return "check the indentation, quotes and brackets near this line"


def compose(text: str, origin: Origin) -> yaml.Node | None:
    """Parse `text` into PyYAML's node graph with the guards above; None for an empty document."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # e.g. undecodable bytes in a --set argument
        line = text.count("\n", 0, err.start) + 1
        raise SpecError(
            "contains bytes that are not valid UTF-8",
            where=origin.where(line, ""),
            hint="use UTF-8 text",
        ) from None
    try:
        _check_events(text)
        return yaml.compose(text, Loader=_LOADER)
    except _Refused as err:
        raise SpecError(
            err.message, where=origin.where(err.mark.line + 1, ""), hint=err.hint
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        if "expected a single document" in (err.context or ""):
            problem = "contains more than one YAML document"
        elif _char_at(text, mark) == "\t":
            problem = "found a tab character where YAML expects spaces"
        elif err.context and err.context_mark and err.problem and origin.is_file:
            problem += f" ({err.context} started on line {err.context_mark.line + 1})"
        where = origin.where(None, "") if mark is None else _at(origin, mark)
        hint = _yaml_hint(problem, _char_at(text, mark))
        raise SpecError(f"invalid YAML: {problem}", where=where, hint=hint) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1 if isinstance(err.position, int) else None
        char = err.character
        code = ord(char) if isinstance(char, str) else char
        shown = f"U+{code:04X}" if isinstance(code, int) else repr(char)
        raise SpecError(
            f"contains the control character {shown}, which YAML does not allow",
            where=origin.where(line, ""),
            hint="remove the character or write it as an escape inside double quotes",
        ) from None
    except yaml.YAMLError as err:
        raise SpecError(f"invalid YAML: {show_text(str(err), 80)}", where=origin.where(None, ""))


def _char_at(text: str, mark: Any) -> str:
    if mark is None:
        return ""
    lines = text.split("\n", mark.line + 1)
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column] if mark.column < len(line) else ""


def _at(origin: Origin, mark: Any) -> str:
    if not origin.is_file:
        return origin.where(None, "")
    return f"{origin.source}:{mark.line + 1}:{mark.column + 1}"


def to_tree(node: yaml.Node, origin: Origin, path: str = "") -> Node:
    """Convert PyYAML's node graph to `Node`s, checking keys: strings, no duplicates."""
    line = None if not origin.is_file else node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        entries: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            key_line = None if not origin.is_file else key_node.start_mark.line + 1
            key = _key_text(key_node, origin, key_line, path)
            child_path = f"{path}.{key}" if path else key
            if key in entries:
                first = entries[key].key_line
                raise SpecError(
                    f"duplicate key {show_text(key)}"
                    + (f" (first written on line {first})" if first else ""),
                    where=origin.where(key_line, child_path),
                    hint="remove one of them; YAML would silently keep only the last",
                )
            entries[key] = Entry(key_line, to_tree(value_node, origin, child_path))
        return Node("map", entries, origin, line)
    if isinstance(node, yaml.SequenceNode):
        items = [to_tree(n, origin, f"{path}[{i}]") for i, n in enumerate(node.value)]
        return Node("seq", items, origin, line)
    kind, value = _scalar(node, origin, line, path)
    # plain style is None from PyYAML's Python composer, '' from libyaml's
    return Node(kind, value, origin, line, text=node.value, plain=not node.style)


def _key_text(key_node: yaml.Node, origin: Origin, line: int | None, path: str) -> str:
    where = origin.where(line, path)
    if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _CORE + "merge":
        raise SpecError(
            "YAML merge keys (<<) are not allowed in a spec",
            where=where,
            hint="write the fields out in full",
        )
    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _CORE + "str":
        shown = show_text(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "a list"
        raise SpecError(
            f"keys must be field names, got {shown}",
            where=where,
            hint="field names are words such as `name` or `max_epochs`; quote a key only if"
            " it is a field name",
        )
    return key_node.value


def _scalar(node: yaml.ScalarNode, origin: Origin, line: int | None, path: str) -> tuple[str, Any]:
    kind = node.tag[len(_CORE) :] if node.tag.startswith(_CORE) else "str"
    if kind not in ("int", "float", "bool", "null", "timestamp"):
        return "str", node.value
    if kind in ("int", "float") and not node.style:
        _refuse_yaml11_number(node.value, kind, origin.where(line, path))
    try:
        return kind, _CONSTRUCT.yaml_constructors[node.tag](_CONSTRUCT, node)
    except (ValueError, OverflowError, yaml.YAMLError):
        # Python refuses to convert integers of more than 4300 digits; dates can be impossible
        if kind == "int":
            message = f"a number with {len(node.value)} digits is too large to read"
        else:
            message = f"cannot read the {kind} {show_text(node.value, 20)}"
        raise SpecError(
            message,
            where=origin.where(line, path),
            hint="write a number of sensible size, or quote the text",
        ) from None


def yaml11_number_problem(text: str, kind: str) -> tuple[str, str] | None:
    """(message, hint) when YAML 1.1 reads the plain scalar `text` as a number other than the
    one written: `010` (octal, 8) or `1:30` (base 60, 90); None for an ordinary number."""
    if kind == "int" and _OCTAL.fullmatch(text):
        digits = text.replace("_", "")
        message = (
            f"{text} would be read as {int(digits, 8)}: YAML 1.1 reads a number with a leading"
            " zero as octal"
        )
        return (
            message,
            f"write {int(digits, 10)} without the leading zero, or quote it if it is text",
        )
    if ":" in text:
        value = _CONSTRUCT.yaml_constructors[_CORE + kind](_CONSTRUCT, yaml.ScalarNode("", text))
        message = f"{text} would be read as {value}: YAML 1.1 reads numbers with colons as base 60"
        return message, "write the number itself, or quote it if it is text (a time, say)"
    return None


def _refuse_yaml11_number(text: str, kind: str, where: str) -> None:
    problem = yaml11_number_problem(text, kind)
    if problem is not None:
        raise SpecError(problem[0], where=where, hint=problem[1])
