"""A generated project's runs, end to end in both styles: each fit in a folder of its own,
resumed in place with one logger version, refused runs that leave nothing, then test, predict,
export (checked with onnxruntime), runs and plot."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from torch_scaffold.generate import render_project

from .helpers import project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")
PACKAGE = "lifecycle"
SPEC = spec_with(
    **{
        "name": "lifecycle",
        "model.hidden_sizes": (16,),
        "data.num_samples": 160,
        "data.batch_size": 16,
        "trainer.log_every_n_steps": 2,
        "trainer.early_stopping.enabled": False,
    }
)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _clear_error(cli, argv: list[str], capsys) -> list[str]:
    """cli.main(argv) exits 2 with one `error:` line (and a `hint:` line); returns them."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error: ", "hint: "))]
    assert [line.split(":")[0] for line in lines] in (["error"], ["error", "hint"]), err
    return lines


def _check_tensorboard(run: Path, epochs: int) -> None:
    """One TensorBoard run in logs/: each epoch's val_loss once, in order; no hp_metric."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # TensorBoard logging is on only where tensorboard is installed
        return
    events = EventAccumulator(str(run / "logs"))
    events.Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    steps = [event.step for event in events.Scalars("val_loss")]
    assert len(steps) == epochs and steps == sorted(set(steps)), steps
    steps = [event.step for event in events.Scalars("train_loss_step")]
    assert steps == sorted(set(steps)), steps  # what an interrupted run logged: hidden


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_runs_live_in_their_own_folders(style, tmp_path, capsys, torch_one_thread):
    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs)]
    with project_module(folder, PACKAGE, "cli") as cli:
        # 1. train
        cli.main([*base, "--name", "first", "--max-epochs", "2"])
        first = outputs / "first"
        before = _digests(first)
        assert {"config.yaml", "run.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"} <= set(
            before
        )
        assert "logs/metrics.csv" in before
        info = json.loads((first / "run.json").read_text())
        assert (info["name"], info["style"], info["status"]) == ("first", style, "finished")
        assert info["monitor"] == "val_loss" and isinstance(info["best"], float)
        assert info["argv"][:2] == [f"python -m {PACKAGE}", "fit"] and "first" in info["argv"]

        # 2. train again with another learning rate: a new folder, the first run untouched
        cli.main([*base, "--max-epochs", "1", "--set", "optimizer.lr=0.01"])
        (second,) = [path for path in outputs.iterdir() if path.name != "first"]
        assert _digests(first) == before
        saved = yaml.safe_load((second / "config.yaml").read_text())
        assert saved["optimizer"]["lr"] == 0.01 and saved["output_dir"] == str(outputs)

        # the same name again, a bad value, a bad checkpoint: refused, nothing written
        capsys.readouterr()
        error, hint = _clear_error(cli, [*base, "--name", "first"], capsys)  # with a hint
        assert error.startswith("error: --name first: ") and "already holds a run" in error
        assert hint.startswith("hint: continue that run with --resume")
        _clear_error(cli, [*base, "--name", "bad", "--set", "optimizer.lr=-1"], capsys)
        broken = tmp_path / "broken.ckpt"
        broken.write_bytes(b"not a checkpoint\n" * 64)
        _clear_error(cli, [*base, "--resume", str(broken)], capsys)
        _clear_error(cli, [*base, "--resume", str(tmp_path / "missing.ckpt")], capsys)
        cli.main([*base, "--fast-dev-run", "--name", "quick"])  # writes nothing
        assert sorted(path.name for path in outputs.iterdir()) == sorted(["first", second.name])
        assert _digests(first) == before

        # 3. resume the first run (by name): same folder, one metrics.csv, one curve
        rows_before = _rows(first)
        metrics = cli.main([*base, "--resume", "first", "--max-epochs", "3"])
        assert sorted(path.name for path in outputs.iterdir()) == sorted(["first", second.name])
        assert not [path for path in (first / "logs").iterdir() if path.is_dir()]
        assert [path.name for path in (first / "logs").glob("*.csv")] == ["metrics.csv"]
        rows = _rows(first)
        training = [row for row in rows_before if not row.get("test_loss")]
        assert rows[: len(training)] == training  # the first run's rows, kept as they were
        epochs = [int(row["epoch"]) for row in rows if row.get("train_loss_epoch")]
        assert epochs == [0, 1, 2], rows
        steps = [int(row["step"]) for row in rows]
        assert steps == sorted(steps), steps
        assert len([row for row in rows if row.get("test_loss")]) == 1  # the old test row: gone
        _check_tensorboard(first, epochs=3)
        resumed = json.loads((first / "run.json").read_text())
        assert resumed["status"] == "finished" and resumed["started"] == info["started"]

        # 4. test: the run's config and its best checkpoint give the metrics fit reported
        capsys.readouterr()
        tested = cli.main(["test", "--run", "first", "--output-dir", str(outputs)])
        assert tested["test_loss"] == pytest.approx(metrics["test_loss"], abs=1e-6)
        assert "checkpoints/best.ckpt: test_loss=" in capsys.readouterr().out
        last = cli.main(["test", "--run", str(first), "--ckpt", "last", "--accelerator", "cpu"])
        assert set(last) == set(tested)
        _clear_error(cli, ["test", "--run", "nowhere", "--output-dir", str(outputs)], capsys)

        # 5. predict: a row per test example with the class and its probabilities
        predictions = tmp_path / "predictions.csv"
        rows = cli.main(["predict", "--run", str(first), "--output", str(predictions)])
        with open(predictions, newline="", encoding="utf-8") as handle:
            table = list(csv.DictReader(handle))
        assert len(table) == rows == 16  # 10% of 160 examples
        assert list(table[0]) == ["id", "label", "prediction", "prob_0", "prob_1", "prob_2"]
        assert all(abs(sum(float(row[f"prob_{k}"]) for k in range(3)) - 1) < 1e-5 for row in table)
        _clear_error(
            cli, ["predict", "--run", str(first), "--output", str(tmp_path / "p.txt")], capsys
        )
        assert not (tmp_path / "p.txt").exists()

        # 6. export to ONNX: onnxruntime computes what the trained model does
        _check_onnx(cli, first, tmp_path / "model.onnx")

        # 7. runs lists both runs with their status and what differs; plot draws them
        capsys.readouterr()
        listing = cli.main(["runs", "--output-dir", str(outputs)])
        assert "first" in listing and second.name in listing and "finished" in listing
        assert "optimizer.lr=0.01" in listing
        png = tmp_path / "curves.png"
        cli.main(["plot", str(first), str(second), "--output", str(png)])
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

        # --resume last continues the newest run (the second one here)
        cli.main([*base, "--resume", "last", "--max-epochs", "2"])
        assert json.loads((second / "run.json").read_text())["status"] == "finished"
        assert sorted(path.name for path in outputs.iterdir()) == sorted(["first", second.name])


def _check_onnx(cli, run: Path, output: Path) -> None:
    import importlib

    import numpy as np
    import onnxruntime
    import torch

    package = cli.__name__.rpartition(".")[0]
    checkpoint_module = importlib.import_module(f"{package}.checkpoint")
    data = importlib.import_module(f"{package}.data")
    config_module = importlib.import_module(f"{package}.config")
    cli.main(["export", "--run", str(run), "--format", "onnx", "--output", str(output)])
    config = config_module.load_config(cli.parse_args(["--config", str(run / "config.yaml")]))
    test = data.load_splits(config).test
    inputs = torch.stack([test[index][0] for index in range(len(test))])
    model = checkpoint_module.load_trained_model(config, str(run / "checkpoints" / "best.ckpt"))
    with torch.no_grad():
        eager = model(inputs).numpy()
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    np.testing.assert_allclose(exported, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_interrupted_run_says_so_and_resumes(style, tmp_path, torch_one_thread):
    import torch

    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    argv = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "2"]
    original = torch.Tensor.backward
    calls = {"n": 0}

    def backward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:  # in the second epoch (8 batches each)
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with project_module(folder, PACKAGE, "cli") as cli:
        torch.Tensor.backward = backward
        handler = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl-C once stopped by it
        try:
            with pytest.raises((KeyboardInterrupt, SystemExit)):  # Lightning: SystemExit(1)
                cli.main([*argv, "--name", "stopped"])
        finally:
            torch.Tensor.backward = original
            signal.signal(signal.SIGINT, handler)
        run = outputs / "stopped"
        assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
        cli.main([*argv, "--resume", "last"])
        assert json.loads((run / "run.json").read_text())["status"] == "finished"
        rows = _rows(run)
        assert [int(row["epoch"]) for row in rows if row.get("train_loss_epoch")] == [0, 1]
        steps = [int(row["step"]) for row in rows if row.get("train_loss_step")]
        assert steps == sorted(set(steps)), steps  # the interrupted epoch's rows: once
        _check_tensorboard(run, epochs=2)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_print_config_is_the_resolved_config_and_reloads(style, tmp_path):
    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    (folder / "exp.yaml").write_text("optimizer:\n  lr: 0.02\ntrainer:\n  max_epochs: 4\n")
    (folder / "more.yaml").write_text("trainer:\n  max_epochs: 6\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)

    def print_config(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", PACKAGE, "fit", *argv, "--print-config"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = print_config(
        "--config", "config.yaml", "--config", "exp.yaml", "--config", "more.yaml", "--seed", "3"
    )
    tree = yaml.safe_load(text)
    assert tree["optimizer"]["lr"] == 0.02  # exp.yaml over config.yaml
    assert tree["trainer"]["max_epochs"] == 6  # more.yaml over exp.yaml
    assert tree["trainer"]["seed"] == 3
    (folder / "printed.yaml").write_text(text)
    assert print_config("--config", "printed.yaml") == text  # ready to save and reuse
    assert not (folder / "outputs").exists()


@pytest.mark.slow
def test_sweep_trains_each_point_in_its_own_folder(tmp_path, capsys, torch_one_thread):
    folder = write_files(render_project(SPEC, "pytorch"), tmp_path / "project")
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "1"]
    with project_module(folder, PACKAGE, "cli") as cli:
        # every point is checked before the first one trains: a bad one writes nothing
        _clear_error(cli, [*base, "--name", "bad", "--sweep", "optimizer.lr=0.01,-1"], capsys)
        assert not outputs.exists()
        cli.main([*base, "--name", "grid", "--sweep", "optimizer.lr=0.01,0.001"])
    names = sorted(path.name for path in outputs.iterdir())
    assert names == ["grid-lr=0.001", "grid-lr=0.01"]
    for name in names:
        saved = yaml.safe_load((outputs / name / "config.yaml").read_text())
        assert saved["optimizer"]["lr"] == float(name.rpartition("=")[2])
        assert json.loads((outputs / name / "run.json").read_text())["status"] == "finished"
    table = capsys.readouterr().out.rpartition("test: ")[2]  # printed after the last point
    assert all(name in table for name in names), table
    assert "optimizer.lr=0.01" in table and "optimizer.lr=0.001" in table  # what differs
