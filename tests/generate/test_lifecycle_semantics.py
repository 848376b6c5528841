"""What a run means over its life, in both styles: a resume continues the run as it was
configured, the split does not move with trainer.seed, the rows logged before a checkpoint
survive a resume, fit says where its run and checkpoints are, a killed run is shown as
stopped, `runs` and `--help` start without torch, and exports name their inputs and outputs."""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import EXAMPLE_SPECS, load_example, project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")
PACKAGE = "lifecycle"
CHANGES = {
    "name": "lifecycle",
    "model.hidden_sizes": (16,),
    "data.num_samples": 160,
    "data.batch_size": 16,
    "trainer.log_every_n_steps": 2,
    "trainer.early_stopping.enabled": False,
}
SPEC = spec_with(**CHANGES)
HEAVY = ("torch", "torchmetrics", "pytorch_lightning", "lightning")


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    return env


def _digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "metrics.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _refused(cli, argv: list[str], capsys) -> tuple[str, str]:
    """cli.main(argv) exits 2 with one `error:` line and a `hint:` line; returns both."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error: ", "hint: "))]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], err
    return lines[0], lines[1]


# -- 1. a resume continues the run as it was configured ---------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_resume_keeps_the_runs_config_and_refuses_other_changes(
    style, tmp_path, capsys, torch_one_thread
):
    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs)]
    with project_module(folder, PACKAGE, "cli") as cli:
        # 192 examples: 154 train, 10 batches an epoch (./config.yaml says 160: 8 batches)
        cli.main([*base, "--name", "run", "--max-epochs", "1", "--set", "data.num_samples=192"])
        run = outputs / "run"
        out = capsys.readouterr().out
        assert f"run folder: {run}\n" in out
        assert f"best checkpoint: {run / 'checkpoints' / 'best.ckpt'}" in out
        assert f"last checkpoint: {run / 'checkpoints' / 'last.ckpt'}" in out
        saved = _digest(run / "config.yaml")
        argv = json.loads((run / "run.json").read_text())["argv"]

        # ./config.yaml changes after the run started: the resume does not read it
        config_file = folder / "config.yaml"
        config_file.write_text(config_file.read_text().replace("lr: 0.001", "lr: 0.05"))
        cli.main([*base, "--resume", "last", "--max-epochs", "2", "--set", "data.num_workers=0"])
        steps = [int(row["step"]) for row in _rows(run) if row.get("train_loss_epoch")]
        assert steps[1] - steps[0] == 10, steps  # still 192 examples, not 160
        assert _digest(run / "config.yaml") == saved
        info = json.loads((run / "run.json").read_text())
        assert info["argv"] == argv and info["status"] == "finished"
        assert info["resumes"][-1]["argv"][-4:] == [
            "--max-epochs",
            "2",
            "--set",
            "data.num_workers=0",
        ]

        # anything but epochs, devices, logging and paths: refused, the run untouched
        before = {path: _digest(path) for path in sorted(run.rglob("*")) if path.is_file()}
        capsys.readouterr()
        for change, key in (
            (["--set", "optimizer.lr=0.01"], "--set optimizer.lr"),
            (["--set", "data.num_samples=160"], "--set data.num_samples"),
            (["--seed", "3"], "--seed (trainer.seed)"),
        ):
            error, hint = _refused(cli, [*base, "--resume", "last", *change], capsys)
            assert error.startswith(f"error: {key}: "), error
            assert f"{run / 'config.yaml'}" in error
            assert hint.startswith("hint: to train with it, start a new run from that checkpoint")
            assert str(run / "checkpoints" / "last.ckpt") in hint
        after = {path: _digest(path) for path in sorted(run.rglob("*")) if path.is_file()}
        assert after == before

        # fewer epochs than the checkpoint has: nothing to train, no traceback, still finished
        cli.main([*base, "--resume", "last", "--max-epochs", "1"])
        assert json.loads((run / "run.json").read_text())["status"] == "finished"


# -- 2. the split has its own seed ------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_a_seed_sweep_trains_and_tests_on_the_same_split(style, tmp_path, torch_one_thread):
    folder = write_files(render_project(SPEC, style, format_code=False), tmp_path / "project")
    text = (folder / "config.yaml").read_text()
    assert "split_seed: 42" in text
    with project_module(folder, PACKAGE, "data") as data:
        config = importlib.import_module(f"{PACKAGE}.config")
        cli = importlib.import_module(f"{PACKAGE}.cli")

        def split(*argv: str) -> dict[str, list]:
            splits = data.load_splits(config.load_config(cli.parse_args(list(argv))))
            return {
                name: sorted(getattr(splits, name).indices) for name in ("train", "val", "test")
            }

        assert split("--seed", "1") == split("--seed", "2") == split()
        moved = split("--set", "data.split_seed=7")
        assert moved["test"] != split()["test"]
        # the default split is the one trainer.seed 42 drew before the split had its own seed
        import torch

        synthetic = importlib.import_module(f"{PACKAGE}.synthetic")
        generator = torch.Generator().manual_seed(42)
        synthetic.make_synthetic(config.load_config(cli.parse_args([])).data, generator)
        order = torch.randperm(160, generator=generator).tolist()
        assert split()["test"] == sorted(order[16:32])


# -- 3. the rows logged before a checkpoint survive a resume ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_the_learning_rate_rows_survive_a_resume(style, tmp_path, torch_one_thread):
    import torch

    spec = spec_with(**CHANGES, **{"scheduler.name": "step"})
    folder = write_files(render_project(spec, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    argv = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "3"]
    original = torch.Tensor.backward
    calls = {"n": 0}

    def backward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:  # in the third epoch (8 batches each)
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with project_module(folder, PACKAGE, "cli") as cli:
        cli.main([*argv, "--name", "whole"])
        torch.Tensor.backward = backward
        handler = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl-C once stopped by it
        try:
            with pytest.raises((KeyboardInterrupt, SystemExit)):
                cli.main([*argv, "--name", "cut"])
        finally:
            torch.Tensor.backward = original
            signal.signal(signal.SIGINT, handler)
        cli.main([*argv, "--resume", "last"])
    whole, cut = _rows(outputs / "whole"), _rows(outputs / "cut")
    assert [row for row in whole if row.get("lr")], "no learning-rate rows logged"
    key = lambda row: (row["step"], row["epoch"], row.get("lr", ""))  # noqa: E731
    assert sorted(map(key, cut)) == sorted(map(key, whole))  # every row once
    assert len(cut) == len(whole)


# -- 4 and 5. fit says where its run is; a killed run is stopped -------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_run_killed_with_9_is_shown_as_stopped(style, tmp_path):
    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    fit = subprocess.Popen(
        [sys.executable, "-m", PACKAGE, "fit", "--accelerator", "cpu", "--name", "killed"]
        + ["--output-dir", str(outputs), "--max-epochs", "1000"],
        cwd=folder,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = fit.stdout.readline()  # printed as the run starts
        assert first == f"run folder: {outputs / 'killed'}\n", first
        info = json.loads((outputs / "killed" / "run.json").read_text())
        assert (info["pid"], info["host"]) == (fit.pid, socket.gethostname())
        assert info["started"]
        assert "killed  " in _runs(folder, outputs) and "running" in _runs(folder, outputs)
    finally:
        fit.send_signal(signal.SIGKILL)
        fit.wait()
        fit.stdout.close()
    table = _runs(folder, outputs)
    assert "stopped" in table and "running" not in table, table
    # the same pid on another machine cannot be checked: it stays running
    info["host"] = "another-host"
    (outputs / "killed" / "run.json").write_text(json.dumps(info))
    assert "running" in _runs(folder, outputs)


def _runs(folder: Path, outputs: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", PACKAGE, "runs", "--output-dir", str(outputs)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


# -- 6. runs and --help start without torch --------------------------------------------------

PROBE = """
import runpy, sys
sys.argv = [{package!r}, *{argv!r}]
try:
    runpy.run_module({package!r}, run_name="__main__")
except SystemExit as exit_:
    assert not exit_.code, exit_.code
print(sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r})))
"""


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    "argv", [["--help"], ["fit", "--help"], ["runs"], ["runs", "--output-dir", "elsewhere"]]
)
def test_runs_and_help_import_no_torch(style, argv, tmp_path):
    folder = write_files(render_project(SPEC, style, format_code=False), tmp_path / "project")
    (folder / "outputs" / "one").mkdir(parents=True)
    (folder / "outputs" / "one" / "run.json").write_text('{"status": "finished"}')
    probe = PROBE.format(package=PACKAGE, argv=argv, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
    if argv == ["runs"]:
        assert "one" in done.stdout and "finished" in done.stdout


# -- 7. exports name their inputs and outputs; sequences keep a free length ------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "output", "sequence"),
    [
        ("mlp_classification", "logits", False),
        ("mlp_regression", "predictions", False),
        ("transformer_lm", "logits", True),
        ("transformer_sequence_regression", "predictions", True),
    ],
)
def test_exports_name_their_inputs_and_outputs(example, output, sequence, tmp_path):
    import torch

    onnxruntime = pytest.importorskip("onnxruntime")
    spec = load_example(next(path for path in EXAMPLE_SPECS if path.stem == example))
    package = build_context(spec, "pytorch")["package_name"]
    folder = write_files(render_project(spec, "pytorch"), tmp_path / "project")
    argv = ["--accelerator", "cpu", "--set", "data.num_samples=128", "--output-dir", "outputs"]
    with project_module(folder, package, "cli") as cli:
        cli.main(["fit", *argv, "--max-epochs", "1", "--name", "run"])
        onnx_path, pt2_path = tmp_path / "model.onnx", tmp_path / "model.pt2"
        cli.main(["export", "--run", "run", "--format", "onnx", "--output", str(onnx_path)])
        cli.main(["export", "--run", "run", "--format", "torch.export", "--output", str(pt2_path)])
        config_module, data, checkpoint = (
            importlib.import_module(f"{package}.{name}")
            for name in ("config", "data", "checkpoint")
        )
        config = config_module.load_config(cli.parse_args(["--config", "outputs/run/config.yaml"]))
        train = data.load_splits(config).train
        inputs = torch.stack([train[index][0] for index in range(3)])
        model = checkpoint.load_trained_model(config, "outputs/run/checkpoints/best.ckpt")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["input"]
    assert [item.name for item in session.get_outputs()] == [output]
    program = torch.export.load(str(pt2_path)).module()
    lengths = [inputs.shape[1], inputs.shape[1] // 2, 1] if sequence else [None]
    for length in lengths:
        part = inputs if length is None else inputs[:, :length]
        with torch.no_grad():
            expected = model(part)
            torch.testing.assert_close(program(part), expected, atol=1e-5, rtol=0)
        (exported,) = session.run(None, {"input": part.numpy()})
        torch.testing.assert_close(torch.from_numpy(exported), expected, atol=1e-5, rtol=0)
