"""Shared test helpers: spec loading, rendering, and running generated projects in-process."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import typing
from pathlib import Path

import yaml

from torch_scaffold.spec import schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SPECS = sorted((REPO / "examples" / "specs").glob("*.yaml"))


def _from_tree(cls, tree):
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in tree.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = _from_tree(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def load_example(path: Path) -> schema.Spec:
    """The spec in `path`, through the spec loader when it is merged."""
    try:
        from torch_scaffold.spec import load_spec
    except ImportError:  # TEMPORARY: until torch_scaffold.spec provides load_spec
        return _from_tree(schema.Spec, yaml.safe_load(path.read_text(encoding="utf-8")))
    return load_spec(str(path), [])


def spec_with(**changes) -> schema.Spec:
    """Spec() with dotted-path changes: spec_with(**{"model.type": "cnn"})."""
    spec = schema.Spec()
    for dotted, value in changes.items():
        spec = _replace_path(spec, dotted.split("."), value)
    return spec


def _replace_path(node, path, value):
    head, *rest = path
    if not rest:
        return dataclasses.replace(node, **{head: value})
    return dataclasses.replace(node, **{head: _replace_path(getattr(node, head), rest, value)})


def write_files(files: dict[str, str], target: Path) -> Path:
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target


@contextlib.contextmanager
def project_module(project_dir: Path, package: str, module: str = "train"):
    """Import <package>.<module> from a generated project, run from its root; forget it after.

    Several generated projects share package names, so each use purges the
    package from sys.modules and restores sys.path and the working folder.
    """
    cwd = os.getcwd()
    sys.path.insert(0, str(project_dir))
    os.chdir(project_dir)
    try:
        yield importlib.import_module(f"{package}.{module}")
    finally:
        os.chdir(cwd)
        sys.path.remove(str(project_dir))
        for name in list(sys.modules):
            if name == package or name.startswith(package + "."):
                del sys.modules[name]


class EnoughSteps(BaseException):
    """Raised from backward() once enough losses are recorded (not an Exception: nothing swallows it)."""


@contextlib.contextmanager
def record_losses(limit: int):
    """Record every scalar loss passed to Tensor.backward (as losstrace.py does), then stop."""
    import torch

    losses: list[float] = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        if self.numel() == 1:
            losses.append(float(self.detach().float()))
        result = original(self, *args, **kwargs)
        if len(losses) >= limit:
            raise EnoughSteps
        return result

    torch.Tensor.backward = backward
    try:
        yield losses
    finally:
        torch.Tensor.backward = original


def train_losses(project_dir: Path, package: str, argv: list[str], steps: int) -> list[float]:
    with project_module(project_dir, package) as train, record_losses(steps) as losses:
        # Guard against a stale import: the code that runs must be this project's.
        assert Path(train.__file__).resolve().is_relative_to(project_dir.resolve())
        try:
            train.main(argv)
        except EnoughSteps:
            pass
    return list(losses)
