"""Shared test helpers: spec loading, rendering, and running generated projects in-process."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import typing
from pathlib import Path

import pytest
import yaml

from torch_scaffold.spec import schema

from .inprocess import EnoughSteps, project_module, record_losses, train_losses  # noqa: F401

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


def expect_clear_error(train, argv, capsys, *needles: str, hint: str | None = None) -> str:
    """train.main(argv) exits 2 with one `error:` line holding every needle, no traceback
    (and, given `hint`, the line after it is `hint: <hint>`); returns the error line."""
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    if hint is not None:
        after = lines[lines.index(errors[0]) + 1 :]
        assert after[:1] == [f"hint: {hint}"], err
    return errors[0]


def fit_args(module, argv=()):
    """The `fit` command's parsed arguments, by the cli module of the generated project that
    `module` (any of its modules) belongs to."""
    import importlib

    package = module.__name__.rpartition(".")[0]
    return importlib.import_module(f"{package}.cli").parse_args(list(argv))


def fifo_released_after(path: Path, seconds: float = 10) -> Path:
    """A FIFO at `path`, and a thread that opens it for writing after `seconds`, then closes
    it: a reader that (wrongly) waits on it gets an empty file, so a regression fails the test
    instead of hanging it. With no reader by then, the thread does nothing."""
    os.mkfifo(path)

    def release() -> None:
        time.sleep(seconds)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO: nobody is reading
        except OSError:
            pass

    threading.Thread(target=release, daemon=True).start()
    return path
