"""`--set KEY=VALUE` overrides, applied to the YAML tree before it is checked.

The value is read as YAML (so `--set model.hidden_sizes=[256,128]` gives a list) with the
same guarded loader as files, and then goes through exactly the checks a file value gets.
Setting a section replaces it as a whole: `--set trainer.early_stopping={enabled: false}`.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch_scaffold.errors import SpecError
from torch_scaffold.spec.introspect import field_map, walk
from torch_scaffold.spec.messages import did_you_mean, show_text
from torch_scaffold.spec.schema import Spec
from torch_scaffold.spec.yaml_nodes import Entry, Node, Origin, compose, to_tree

MAX_OVERRIDE_CHARS = 10_000


def apply_overrides(tree: Node | None, overrides: Iterable[str], origin: Origin) -> Node | None:
    for text in overrides:
        key, node = parse_override(text)
        tree = _set(tree, key, node, origin)
    return tree


def parse_override(text: str) -> tuple[str, Node]:
    """'optimizer.lr=3e-4' -> ('optimizer.lr', Node float 3e-4), checking the key against the schema."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(
            f"expected KEY=VALUE, got {show_text(text)}",
            where="--set",
            hint="write e.g. --set optimizer.lr=0.001",
        )
    _check_key(key)
    origin = Origin(f"--set {key}", is_file=False)
    if len(value) > MAX_OVERRIDE_CHARS:
        raise SpecError(f"value is too long ({len(value)} characters)", where=origin.source)
    parsed = compose(value, origin)
    if parsed is None:  # `--set key=` (nothing after '='): YAML null, like an empty value in a file
        return key, Node("null", None, origin, None)
    return key, to_tree(parsed, origin, key)


def _check_key(key: str) -> None:
    cls: type | None = Spec
    done: list[str] = []
    for part in key.split("."):
        here = ".".join(done + [part])
        if cls is None:
            raise SpecError(
                f"{'.'.join(done)} is a value, not a section with fields",
                where=f"--set {key}",
                hint=f"use --set {'.'.join(done)}=VALUE",
            )
        info = field_map(cls).get(part)
        if info is None:
            candidates = [p for p, _ in walk(Spec)]
            close = did_you_mean(here, candidates) or did_you_mean(key, candidates)
            leaf = [p for p in candidates if p.rsplit(".", 1)[-1] == part]
            suggestion = close or (leaf[0] if leaf else None)
            raise SpecError(
                f"unknown field {show_text(here)}",
                where=f"--set {key}",
                hint=(
                    f"did you mean `{suggestion}`?"
                    if suggestion
                    else "`scaffold spec example` lists every field"
                ),
            )
        done.append(part)
        cls = info.section


def _set(tree: Node | None, key: str, node: Node, origin: Origin) -> Node:
    if tree is None or tree.kind != "map":
        # an empty file gets its fields from overrides; a non-mapping is reported by the builder
        if tree is not None and tree.kind != "null":
            return tree
        tree = Node("map", {}, origin, tree.line if tree else None)
    parent = tree
    *sections, leaf = key.split(".")
    for part in sections:
        entry = parent.value.get(part)
        if entry is None or entry.node.kind != "map":
            entry = Entry(None, Node("map", {}, node.origin, None), key_origin=node.origin)
            parent.value[part] = entry
        parent = entry.node
    parent.value[leaf] = Entry(None, node, key_origin=node.origin)
    return tree


def merge_overrides(earlier: Iterable[str], later: Iterable[str]) -> list[str]:
    """The overrides as a set keyed by field, the latest value winning: `later` replaces an
    earlier override of the same field and any earlier one inside a section it sets whole
    (they would be overwritten anyway). Order is kept, so applying the result gives the same
    spec as applying both lists one after the other."""
    merged: list[str] = list(earlier)
    for text in later:
        key = _key_of(text)
        merged = [old for old in merged if not _within(_key_of(old), key)]
        merged.append(text)
    return merged


def _key_of(text: str) -> str:
    return text.partition("=")[0].strip()


def _within(key: str, section: str) -> bool:
    return key == section or key.startswith(section + ".")
