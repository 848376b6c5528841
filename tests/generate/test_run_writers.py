"""One writer per run and an honest status, in both styles of a generated project (issue 23):
a lock per run folder (a second writer is refused, naming the process; kill -9 frees it),
SIGTERM and SIGINT (a resumable run, status `interrupted`, exit 143 or 130, one line), a full
disk (the file named, the name free again, no run left `running`), kill -9 during predict or
export (no partial file kept), and bad output places as one-line errors.

The processes that hold a run, get a signal or are killed are real: a child runs the
project's cli with a hook on Tensor.backward (or os.replace) that stops or signals it there.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")
PACKAGE = "writers"
SPEC = spec_with(
    **{
        "name": PACKAGE,
        "model.hidden_sizes": (16,),
        "data.num_samples": 160,  # 8 training batches an epoch
        "data.batch_size": 16,
        "trainer.log_every_n_steps": 2,
        "trainer.early_stopping.enabled": False,
    }
)

# A child process running the project's cli, with a hook where the test wants it:
#   hold N       stop itself (SIGSTOP) before the Nth backward, holding what the run holds
#   SIGTERM N    send itself SIGTERM (or SIGINT) before the Nth backward
#   rename NAME  stop itself just before the rename that publishes the output NAME
CHILD = """
import os, signal, sys
import torch
project, package, mode, where, *argv = sys.argv[1:]
sys.path.insert(0, project)
os.chdir(project)
torch.set_num_threads(1)
cli = __import__(package + ".cli", fromlist=["main"])

def stop_here():
    print("stopped", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)

if mode == "rename":
    replace = os.replace
    def hooked_replace(source, destination, *args, **kwargs):
        if str(destination).endswith(where):
            stop_here()
        return replace(source, destination, *args, **kwargs)
    os.replace = hooked_replace
else:
    backward, count = torch.Tensor.backward, [0]
    def hooked_backward(self, *args, **kwargs):
        count[0] += 1
        if count[0] == int(where):
            stop_here() if mode == "hold" else os.kill(os.getpid(), getattr(signal, mode))
        return backward(self, *args, **kwargs)
    torch.Tensor.backward = hooked_backward
cli.main(argv)
"""


def _project(style: str, root: Path) -> Path:
    return write_files(render_project(SPEC, style), root / f"project-{style}")


def _child(project: Path, mode: str, where: str | int, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, str(project), PACKAGE, mode, str(where), *argv]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_stopped(child: subprocess.Popen) -> None:
    """Until the child says it stopped itself (after a progress bar's text, maybe)."""
    for line in child.stdout:
        if line.strip().endswith("stopped"):
            return
    child.kill()
    raise AssertionError(f"the child ended first:\n{child.communicate()[1][-3000:]}")


def _refused(cli, argv: list[str], capsys) -> tuple[str, str]:
    """cli.main(argv) exits 2 with one `error:` line and a `hint:` line; returns them."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error: ", "hint: "))]
    assert [line.split(":")[0] for line in lines] == ["error", "hint"], err
    return lines[0], lines[1]


def _status(run: Path) -> str:
    return json.loads((run / "run.json").read_text())["status"]


def _epochs(run: Path) -> list[int]:
    import csv

    with open(run / "logs" / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [int(row["epoch"]) for row in rows if row.get("train_loss_epoch")]


# -- one writer per run ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_second_writer_is_refused_and_the_lock_dies_with_its_process(
    style, tmp_path, capsys, torch_one_thread
):
    project = _project(style, tmp_path)
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "3"]
    run = outputs / "run"
    # a run still training: stopped in its second epoch (last.ckpt of the first is written)
    holder = _child(project, "hold", 12, [*base, "--name", "run"])
    try:
        _wait_stopped(holder)
        with project_module(project, PACKAGE, "cli") as cli:
            who = f"process {holder.pid} on {socket.gethostname()}"
            for resume in ("last", "run", str(run)):  # a resume of the live run: refused
                error, _ = _refused(cli, [*base, "--resume", resume], capsys)
                assert error.startswith(f"error: --resume {resume}: ") and who in error, error
            # the name's hint no longer suggests the resume that would collide
            error, hint = _refused(cli, [*base, "--name", "run"], capsys)
            assert "already holds a run" in error and who in hint and "--resume" not in hint
            assert _status(run) == "running"
            holder.kill()  # kill -9: the lock goes with the process
            holder.wait()
            cli.main([*base, "--resume", "last"])
        assert _status(run) == "finished"
        assert _epochs(run) == [0, 1, 2]
    finally:
        holder.kill()
        holder.communicate()


# -- signals --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_stops_the_run_resumably_with_one_line(
    style, name, code, tmp_path, torch_one_thread
):
    project = _project(style, tmp_path)
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "3"]
    run = outputs / "run"
    child = _child(project, name, 12, [*base, "--name", "run"])  # in the second epoch
    _, err = child.communicate(timeout=300)
    assert child.returncode == code, err[-3000:]
    assert "Traceback" not in err
    lines = [line.strip() for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == f"stopped by {name}; continue with --resume {run}", err[-3000:]
    assert [line for line in lines if line.startswith("stopped")] == lines[-1:]
    assert _status(run) == "interrupted"
    with project_module(project, PACKAGE, "cli") as cli:
        cli.main([*base, "--resume", "last"])
    assert _status(run) == "finished"
    assert _epochs(run) == [0, 1, 2]  # the interrupted epoch's row: once


# -- a full disk ----------------------------------------------------------------------------


class FullDisk:
    """Files under `root` opened for writing fail with ENOSPC at their first write once `full`
    is set, as on a full disk (the error names no file, as write() does). Rewriting a file in
    place (r+) needs no new blocks, so it still works, as it does on a full disk."""

    def __init__(self, root: Path, monkeypatch) -> None:
        self.root = str(root)
        self.full = False
        original = io.open

        def opened(file, mode="r", *args, **kwargs):
            handle = original(file, mode, *args, **kwargs)
            if self.full and set(mode) & set("wax") and self._under_root(file):
                return _NoSpace(handle)
            return handle

        monkeypatch.setattr(io, "open", opened)
        monkeypatch.setattr(builtins, "open", opened)

    def _under_root(self, file) -> bool:
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fsdecode(file)
        return os.path.abspath(path).startswith(self.root)


class _NoSpace:
    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_full_disk_at_the_start_names_the_file_and_keeps_the_name_free(
    style, tmp_path, capsys, monkeypatch, torch_one_thread
):
    project = _project(style, tmp_path)
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "1"]
    with project_module(project, PACKAGE, "cli") as cli:
        disk = FullDisk(outputs, monkeypatch)
        disk.full = True
        error, _ = _refused(cli, [*base, "--name", "run"], capsys)
        assert str(outputs / "run" / "config.yaml") in error and "No space left" in error
        assert not (outputs / "run").exists()  # nothing left to block the name
        disk.full = False
        cli.main([*base, "--name", "run"])
    assert _status(outputs / "run") == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_full_disk_during_the_run_leaves_no_run_marked_running(
    style, tmp_path, capsys, monkeypatch, torch_one_thread
):
    import torch

    project = _project(style, tmp_path)
    outputs = tmp_path / "outputs"
    base = ["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--max-epochs", "3"]
    disk = FullDisk(outputs, monkeypatch)
    original, count = torch.Tensor.backward, [0]

    def backward(self, *args, **kwargs):
        count[0] += 1
        disk.full = count[0] >= 12  # the disk fills up in the second epoch
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    with project_module(project, PACKAGE, "cli") as cli:
        error, _ = _refused(cli, [*base, "--name", "run"], capsys)
    assert "No space left" in error, error
    assert _status(outputs / "run") == "failed"


# -- kill -9 during predict or export; bad output places ------------------------------------


@pytest.fixture(scope="module", params=STYLES)
def trained(request, tmp_path_factory):
    """A project of each style with one trained run (outputs/first)."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp(request.param)
    project = _project(request.param, root)
    outputs = root / "outputs"
    with project_module(project, PACKAGE, "cli") as cli:
        cli.main(["fit", "--accelerator", "cpu", "--output-dir", str(outputs), "--name", "first",
                  "--max-epochs", "1"])  # fmt: skip
    return project, outputs


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, output",
    [(["predict"], "predictions.csv"), (["export", "--format", "torch.export"], "model.pt2")],
)
def test_kill_9_while_writing_an_output_leaves_no_partial_file(trained, command, output, tmp_path):
    project, outputs = trained
    folder = tmp_path / "out"
    argv = [*command, "--run", str(outputs / "first"), "--output", str(folder / output)]
    child = _child(project, "rename", output, argv)
    try:
        _wait_stopped(child)
        child.kill()  # kill -9 just before the rename: the whole file is still temporary
        child.wait()
    finally:
        child.kill()
        child.communicate()
    assert len(list(folder.iterdir())) == 1 and not (folder / output).exists()
    with project_module(project, PACKAGE, "cli") as cli:
        cli.main(argv)  # the next write of the output removes what the killed one left
    assert [path.name for path in folder.iterdir()] == [output]


@pytest.mark.slow
def test_bad_output_places_are_one_line_errors(trained, tmp_path, capsys):
    project, outputs = trained
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    fit = ["fit", "--accelerator", "cpu", "--max-epochs", "1"]
    run = ["--run", str(outputs / "first")]
    with project_module(project, PACKAGE, "cli") as cli:
        for output_dir in (a_file, a_file / "below", Path("/proc/self")):
            error, _ = _refused(cli, [*fit, "--output-dir", str(output_dir)], capsys)
            assert error.startswith("error: output_dir: cannot create the run folder"), error
        error, _ = _refused(cli, [*fit, "--output-dir", str(outputs), "--name", "n" * 300], capsys)
        assert "300 bytes" in error
        for command in (["predict"], ["export", "--format", "torch.export"]):
            suffix = ".csv" if command == ["predict"] else ".pt2"
            output = a_file / f"out{suffix}"
            error, _ = _refused(cli, [*command, *run, "--output", str(output)], capsys)
            assert error.startswith(f"error: --output: cannot write {output}: "), error
    assert sorted(path.name for path in outputs.iterdir()) == ["first"]


@pytest.mark.slow
def test_a_run_json_with_a_bad_start_time_is_passed_over(trained, tmp_path, capsys):
    project, outputs = trained
    odd = outputs / "odd"
    odd.mkdir()
    (odd / "run.json").write_text(json.dumps({"name": "odd", "started": 5}))
    try:
        with project_module(project, PACKAGE, "cli") as cli:
            tested = cli.main(["test", "--output-dir", str(outputs)])  # the newest good run
            assert "test_loss" in tested
            listing = cli.main(["runs", "--output-dir", str(outputs)])
            assert "first" in listing and "odd" in listing
            cli.main(["fit", "--accelerator", "cpu", "--output-dir", str(outputs),
                      "--resume", "last", "--max-epochs", "2"])  # fmt: skip
        assert _epochs(outputs / "first") == [0, 1]
    finally:
        (odd / "run.json").unlink()
        odd.rmdir()
