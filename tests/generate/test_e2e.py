"""End to end: generate every example spec in both styles, lint, train, resume, run its tests."""

import csv
import math
import os
import subprocess
import sys

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import (
    EXAMPLE_SPECS,
    EnoughSteps,
    load_example,
    project_module,
    record_losses,
    spec_with,
    train_losses,
    write_files,
)

STYLES = ("pytorch", "lightning")
CASES = [(path.stem, style) for path in EXAMPLE_SPECS for style in STYLES]
BIN = os.path.dirname(sys.executable)
EXAMPLES = {path.stem: path for path in EXAMPLE_SPECS}


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """{(spec stem, style): (project folder, package, context)} for every example spec."""
    root = tmp_path_factory.mktemp("projects")
    made = {}
    for path in EXAMPLE_SPECS:
        spec = load_example(path)
        for style in STYLES:
            folder = write_files(render_project(spec, style), root / f"{path.stem}-{style}")
            context = build_context(spec, style)
            made[(path.stem, style)] = (folder, context["package_name"], context)
    return made


@pytest.mark.slow
def test_generated_code_passes_black_and_ruff(projects):
    folders = [str(folder) for folder, _, _ in projects.values()]
    black = subprocess.run(  # the return code is asserted below
        [sys.executable, "-m", "black", "--check", "-q", "-l", "100", *folders],
        check=False,
        capture_output=True,
        text=True,
    )
    assert black.returncode == 0, black.stderr
    for folder in folders:  # each project is linted with its own pyproject settings
        ruff = subprocess.run(
            [os.path.join(BIN, "ruff"), "check", "-q", "."],
            cwd=folder,
            check=False,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, f"{folder}\n{ruff.stdout}"


def _epoch_losses(output_dir):
    """The epoch losses of the one run in output_dir (its one metrics.csv)."""
    (metrics,) = output_dir.glob("*/logs/metrics.csv")
    with open(metrics, newline="") as handle:
        return [
            float(r["train_loss_epoch"]) for r in csv.DictReader(handle) if r["train_loss_epoch"]
        ]


def _checkpoint_epoch(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["epoch"]


def _batches_per_epoch(spec) -> int:
    total = spec.data.num_samples
    train = total - int(total * spec.data.val_split) - int(total * spec.data.test_split)
    return math.ceil(train / spec.data.batch_size)


@pytest.mark.slow
@pytest.mark.parametrize("stem, style", CASES)
def test_trains_crashes_and_resumes(projects, stem, style, torch_one_thread):
    """Two full epochs, a crash early in the third, then `--resume last` finishes the run."""
    folder, package, context = projects[(stem, style)]
    outputs = folder / "outputs"
    argv = ["--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "3"]
    crash_at = 2 * _batches_per_epoch(load_example(EXAMPLES[stem])) + 2
    with (
        project_module(folder, package) as train,
        record_losses(crash_at),
        pytest.raises(EnoughSteps),
    ):
        train.main(argv)
    losses = _epoch_losses(outputs)
    assert len(losses) == 2 and losses[1] < losses[0], losses
    (run,) = outputs.iterdir()
    checkpoints = run / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    assert (checkpoints / "best.ckpt").is_file() == context["best_checkpoint"]
    before = _checkpoint_epoch(checkpoints / "last.ckpt")

    with project_module(folder, package) as train:
        metrics = train.main([*argv, "--resume", "last"])
    assert _checkpoint_epoch(checkpoints / "last.ckpt") == before + 1
    assert list(outputs.iterdir()) == [run]  # the resumed run went on in its own folder
    resumed = _epoch_losses(outputs)  # one curve, the first two epochs logged once
    assert len(resumed) == 3 and resumed[:2] == losses, resumed
    assert "test_loss" in metrics and math.isfinite(metrics["test_loss"])


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_generated_projects_own_test_suite_passes(projects, style):
    folder, _, _ = projects[("mlp_classification", style)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # the project must not need torch_scaffold
    result = subprocess.run(  # the return code is asserted below
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    # the project's pytest config turns warnings into errors; none may be left to report
    assert " passed" in summary and "warning" not in summary and "error" not in summary, summary


# Real-data sources: a CSV with text class labels, and an .npz regression set.
FILE_SPECS = {
    "csv": spec_with(
        **{
            "name": "csv-classifier",
            "data.source": "csv",
            "data.path": "data/train.csv",
            "data.target": "label",
            "data.num_samples": 512,
        }
    ),
    "npz": spec_with(
        **{
            "name": "npz-regressor",
            "task": "regression",
            "data.source": "npz",
            "data.path": "data/train.npz",
            "data.target": "y",
        }
    ),
}


def _write_data(kind, folder):
    import numpy as np

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((512, 6)).astype("float32")
    (folder / "data").mkdir()
    if kind == "csv":
        names = np.array(["bird", "cat", "dog"])[(inputs[:, :3]).argmax(axis=1)]
        rows = ["f0,f1,f2,f3,f4,f5,label"]
        rows += [",".join([*(f"{v:.5f}" for v in row), name]) for row, name in zip(inputs, names)]
        (folder / "data" / "train.csv").write_text("\n".join(rows) + "\n")
    else:
        targets = inputs @ rng.standard_normal((6, 1)).astype("float32")
        np.savez(folder / "data" / "train.npz", x=inputs, y=targets)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(FILE_SPECS))
@pytest.mark.parametrize("style", STYLES)
def test_file_data_sources_train(kind, style, tmp_path, torch_one_thread):
    spec = FILE_SPECS[kind]
    context = build_context(spec, style)
    folder = write_files(render_project(spec, style), tmp_path / "project")
    _write_data(kind, folder)
    with project_module(folder, context["package_name"]) as train:
        metrics = train.main(["--accelerator", "cpu", "--max-epochs", "2"])
    losses = _epoch_losses(folder / "outputs")
    assert len(losses) == 2 and losses[1] < losses[0], losses
    assert all(math.isfinite(value) for value in metrics.values())
    if kind == "csv":
        assert metrics["val_accuracy"] > 0.5  # three classes: well above chance


@pytest.mark.slow
def test_csv_projects_own_test_suite_passes(tmp_path):
    """The project's tests make their own small CSV, so they pass before real data exists."""
    folder = write_files(render_project(FILE_SPECS["csv"], "pytorch"), tmp_path / "csv")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(  # the return code is asserted below
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_everything_switched_off_still_trains_in_parity(tmp_path, torch_one_thread):
    """No val/test split, no checkpoints, no logs, no early stopping: lint-clean, trains, agrees."""
    spec = spec_with(
        **{
            "name": "bare-bones",
            "data.val_split": 0.0,
            "data.test_split": 0.0,
            "trainer.checkpoint.enabled": False,
            "trainer.early_stopping.enabled": False,
            "logging.csv": False,
            "logging.tensorboard": False,
        }
    )
    traces = []
    for style in STYLES:
        folder = write_files(render_project(spec, style), tmp_path / style)
        ruff = subprocess.run(
            [os.path.join(BIN, "ruff"), "check", "-q", "."],
            cwd=folder,
            check=False,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout
        traces.append(train_losses(folder, "bare_bones", ["--max-epochs", "2"], 10**6))
        assert not list(folder.rglob("*.ckpt")) and not list(folder.rglob("*.csv"))
    assert len(traces[0]) == len(traces[1]) == 2 * 32  # 2048 examples, batches of 64
    assert max(abs(a - b) for a, b in zip(*traces)) <= 1e-6
