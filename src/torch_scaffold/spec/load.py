"""Load a spec: text -> guarded YAML tree -> overrides -> typed Spec -> cross-field rules."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable

from torch_scaffold.errors import SpecError, spec_errors
from torch_scaffold.spec.build import build_spec
from torch_scaffold.spec.custom_model import resolve_source
from torch_scaffold.spec.overrides import apply_overrides
from torch_scaffold.spec.rules import check_rules, spec_folder
from torch_scaffold.spec.schema import Spec
from torch_scaffold.spec.source import read_spec_file
from torch_scaffold.spec.yaml_nodes import Origin, compose, to_tree

DEFAULT_SOURCE = "<default spec>"


def load_spec(path: str | os.PathLike | None, overrides: Iterable[str] | None = ()) -> Spec:
    """Read, check and build the spec at `path`; raises SpecError (exit 2) on any problem.

    Problems in the YAML itself (syntax, tags, aliases, duplicate keys, a top level that is
    not a mapping) stop at once. Otherwise every bad field and every conflict is reported:
    one SpecError, or SpecErrors (a SpecError) holding them all in file order.

    `path=None` loads the embedded default spec (`scaffold spec example`), so that
    `scaffold new --set ...` without a file checks its overrides the same way.
    """
    if path is None:
        from torch_scaffold.spec.example import example_yaml

        return load_spec_text(example_yaml(), DEFAULT_SOURCE, overrides)
    return load_spec_text(read_spec_file(path), os.fspath(path), overrides)


def load_spec_text(text: str, source: str = "<spec>", overrides: Iterable[str] | None = ()) -> Spec:
    """The pure core of `load_spec`: `source` only names the text in error messages."""
    origin = Origin(source)
    if "\x00" in text:
        raise SpecError("contains NUL characters; it is not a YAML text", where=source)
    document = compose(text, origin)
    if document is None:
        raise SpecError(
            "file is empty" if not text.strip() else "file has no fields, only comments",
            where=source,
            hint="`scaffold spec example` prints a complete spec to start from",
        )
    tree = apply_overrides(to_tree(document, origin), overrides or (), origin)
    spec, locations, errors = build_spec(tree, origin)
    errors += check_rules(spec, locations)
    if errors:
        raise spec_errors(_in_file_order(errors, origin))
    if spec.model.type == "custom":
        # relative to the spec file; rendering may run from another folder
        path, class_name = resolve_source(spec.model.source, spec_folder(locations))
        model = dataclasses.replace(spec.model, source=f"{path}:{class_name}")
        spec = dataclasses.replace(spec, model=model)
    return spec


def _in_file_order(errors: list[SpecError], origin: Origin) -> list[SpecError]:
    """Sorted by line (stable: field errors before rule errors on the same line); errors
    without a line (a missing field, a default, a --set value) come last."""
    at_line = re.compile(re.escape(origin.source) + r":(\d+)(:|$)")

    def line(err: SpecError) -> float:
        found = at_line.match(err.where or "")
        return int(found.group(1)) if found else float("inf")

    return sorted(errors, key=line)
