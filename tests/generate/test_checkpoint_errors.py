"""A bad `--resume` checkpoint is one clear error line and exit code 2 in both styles.

Truncated, random, empty and foreign files, a checkpoint of the other style, one of a model
with other shapes, one holding arbitrary Python objects, a missing file and `--resume last`
before anything was saved: none may end in a traceback from deep inside torch or Lightning.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import expect_clear_error, project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")
SPEC = spec_with(
    **{
        "name": "resume-errors",
        "model.hidden_sizes": (16,),
        "data.num_samples": 96,
        "data.test_split": 0.0,
        "trainer.early_stopping.enabled": False,
        "logging.csv": False,
        "logging.tensorboard": False,
    }
)
ARGV = ["--accelerator", "cpu", "--max-epochs", "1"]


class Opaque:
    """A class a checkpoint must not be allowed to instantiate (weights_only loading)."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, torch_one_thread):
    """{style: (project folder, package)}, each trained one epoch (outputs/checkpoints/last.ckpt)."""
    root = tmp_path_factory.mktemp("resume-errors")
    made = {}
    for style in STYLES:
        package = build_context(SPEC, style)["package_name"]
        folder = write_files(render_project(SPEC, style), root / style)
        with project_module(folder, package) as train:
            train.main(ARGV)
        assert (folder / "outputs" / "checkpoints" / "last.ckpt").is_file()
        made[style] = (folder, package)
    return made


def _bad_files(trained, style: str, folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (checkpoint file, text the error line must contain)."""
    import torch

    last = (folder / "outputs" / "checkpoints" / "last.ckpt").read_bytes()
    other = "lightning" if style == "pytorch" else "pytorch"
    bad = folder / "bad"
    bad.mkdir(exist_ok=True)
    rng = random.Random(2)
    contents = {
        "truncated": (last[: len(last) // 2], "not a readable checkpoint"),
        "truncated-tiny": (last[:100], "not a readable checkpoint"),
        "random-bytes": (rng.randbytes(4096), "not a readable checkpoint"),
        "empty": (b"", "not a readable checkpoint"),
        "text": (b"name: not a checkpoint\n", "not a readable checkpoint"),
    }
    files = {}
    for name, (data, message) in contents.items():
        (bad / f"{name}.ckpt").write_bytes(data)
        files[name] = (bad / f"{name}.ckpt", message)
    other_last = trained[other][0] / "outputs" / "checkpoints" / "last.ckpt"
    files["other-style"] = (other_last, "not a checkpoint of this")
    torch.save({"model": Opaque()}, bad / "objects.ckpt")
    files["python-objects"] = (bad / "objects.ckpt", "holds Python objects")
    files["missing"] = (bad / "missing.ckpt", "no checkpoint file")
    return files


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_unusable_checkpoint_files_are_one_clear_error(trained, style, capsys):
    folder, package = trained[style]
    files = _bad_files(trained, style, folder)
    with project_module(folder, package) as train:
        for name, (path, message) in files.items():
            line = expect_clear_error(train, [*ARGV, "--resume", str(path)], capsys, message)
            assert str(path) in line, (name, line)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_checkpoint_of_another_model_shape_is_one_clear_error(trained, style, capsys):
    folder, package = trained[style]
    before = (folder / "outputs" / "checkpoints" / "last.ckpt").read_bytes()
    with project_module(folder, package) as train:
        argv = [*ARGV, "--max-epochs", "2", "--resume", "last"]
        expect_clear_error(
            train, [*argv, "--set", "model.hidden_sizes=[7]"], capsys, "last.ckpt", "shape"
        )
        expect_clear_error(
            train, [*argv, "--set", "model.hidden_sizes=[16,16]"], capsys, "different model"
        )
    # a refused resume leaves the checkpoint as it was
    assert (folder / "outputs" / "checkpoints" / "last.ckpt").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_resume_last_with_nothing_saved_is_one_clear_error(trained, style, capsys, tmp_path):
    folder, package = trained[style]
    empty = tmp_path / "fresh-outputs"
    with project_module(folder, package) as train:
        argv = [*ARGV, "--output-dir", str(empty), "--resume", "last"]
        expect_clear_error(train, argv, capsys, "--resume last", "no checkpoint file")
    assert not (empty / "checkpoints").exists() or os.listdir(empty / "checkpoints") == []


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_resume_in_a_project_without_checkpoints_is_one_clear_error(style, tmp_path, capsys):
    spec = spec_with(**{"name": "no-checkpoints", "trainer.checkpoint.enabled": False})
    package = build_context(spec, style)["package_name"]
    folder = write_files(render_project(spec, style), tmp_path / style)
    with project_module(folder, package) as train:
        expect_clear_error(train, [*ARGV, "--resume", "last"], capsys, "checkpointing switched off")
