"""Spec values as plain data (for templates, config files and JSON)."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch_scaffold.spec.schema import Spec


def default_spec() -> Spec:
    """The spec used when `scaffold new` gets no file: an MLP classifier on synthetic data."""
    return Spec()


def to_dict(value: Any) -> Any:
    """A Spec (or section) as nested dicts and lists, every field present, in schema order."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_dict(v) for v in value]
    return value
