"""`scaffold convert --verify`: compare the first N losses of the original and converted script.

Fast tests: the verdict on two traces, the copy-on-write scratch mirror, the write guard and
the options. Slow tests run real scripts (torch, Lightning) in subprocesses: a conversion that
matches, one made to differ (the converted code patched to train differently), the timeout,
an original that fails, and a notebook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import torch_scaffold.convert as convert_pkg
from torch_scaffold.cli import main
from torch_scaffold.convert import _verify_runner as runner
from torch_scaffold.convert.verify import MISMATCH, OK, UNVERIFIED, Run, compare

from .conftest import REPO


def invoke(*args):
    return CliRunner().invoke(main, ["convert", *map(str, args)])


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --- the verdict ---------------------------------------------------------------------------


def test_identical_losses():
    a = Run([0.5, 0.25, 0.125], "steps")
    verdict = compare(a, Run([0.5, 0.25, 0.125], "steps"), 3, 60)
    assert (verdict.status, verdict.message) == (OK, "first 3 losses identical")
    assert verdict.weights == "weights not compared: not recorded"


def test_weights_that_agree_are_said_with_their_count():
    a = Run([0.5, 0.25], "steps", weights={"count": 4})
    b = Run([0.5, 0.25], "steps", weights={"count": 4, "exact": True})
    verdict = compare(a, b, 2, 60)
    assert (verdict.status, verdict.weights) == (OK, "weights at loss 2 identical (4 tensors)")
    b.weights["exact"] = False
    assert compare(a, b, 2, 60).weights.startswith("weights at loss 2 agree within 1e-05")


def test_weights_taken_at_different_points_are_not_compared():
    a = Run([0.5, 0.25], "steps", weights={"count": 4})
    b = Run([0.5, 0.25], "end", weights={"count": 4, "tensor": "w", "why": "largest difference 1"})
    verdict = compare(a, b, 2, 60)
    assert verdict.status == OK
    assert verdict.weights == (
        "weights not compared: the original was stopped at loss 2, the converted ended"
    )


def test_a_differing_tensor_is_a_mismatch_naming_it():
    a = Run([0.5, 0.25], "end", weights={"count": 4})
    b = Run(
        [0.5, 0.25],
        "end",
        weights={"count": 4, "tensor": "2.weight", "why": "largest difference 0.5"},
    )
    verdict = compare(a, b, None, 60)
    assert verdict.status == MISMATCH
    assert verdict.message == (
        "final weights differ: first differing tensor 2.weight (largest difference 0.5); "
        "all 2 losses agree"
    )
    assert verdict.hint.startswith("the conversion changed how the script updates the model")


def test_whole_runs_compare_every_loss():
    a = Run([0.5, 0.25, 0.1], "end", weights={"none": "the script made no torch.optim optimizer"})
    verdict = compare(a, Run([0.5, 0.25, 0.1], "end"), None, 60)
    assert (verdict.status, verdict.message) == (OK, "all 3 losses identical (whole runs)")
    assert verdict.weights == "weights not compared: the script made no torch.optim optimizer"
    verdict = compare(a, Run([0.5, 0.25], "end"), None, 60)
    assert verdict.status == MISMATCH
    timed_out = compare(Run([0.5], "timeout"), Run(ended="skipped"), None, 60)
    assert timed_out.message.startswith("the original script did not reach the end of its run")


def test_losses_within_tolerance_are_not_called_identical():
    verdict = compare(Run([1.0, 2.0], "steps"), Run([1.0, 2.0000001], "steps"), 2, 60)
    assert verdict.status == OK
    assert verdict.message.startswith("first 2 losses agree within 1e-05 + 0.0001 x |loss|")


def test_first_differing_loss_is_named_with_both_values():
    verdict = compare(Run([0.5, 0.4, 0.3], "steps"), Run([0.5, 0.4, 0.35], "steps"), 3, 60)
    assert verdict.status == MISMATCH
    assert verdict.message == "loss 3 differs: original 0.3, converted 0.35 (losses 1-2 agree)"


def test_nan_matches_only_nan():
    assert compare(Run([float("nan")], "steps"), Run([float("nan")], "steps"), 1, 9).status == OK
    assert compare(Run([float("nan")], "steps"), Run([1.0], "steps"), 1, 9).status == MISMATCH


def test_converted_that_fails_early_is_a_mismatch():
    verdict = compare(
        Run([0.5, 0.4, 0.3], "steps"), Run([0.5], "error", "NameError: name 'pbar'"), 3, 60
    )
    assert verdict.status == MISMATCH
    assert "the converted script failed: NameError: name 'pbar' after 1 loss" in verdict.message


def test_converted_that_trains_longer_is_a_mismatch():
    verdict = compare(Run([0.5, 0.4], "end"), Run([0.5, 0.4, 0.3], "end"), 5, 60)
    assert verdict.status == MISMATCH
    assert "the original script ended after 2 losses, the converted one went on" in verdict.message


def test_converted_that_fails_after_training_is_a_mismatch():
    verdict = compare(Run([0.5], "end"), Run([0.5], "error", "NameError: name 'pbar'"), 5, 60)
    assert verdict.status == MISMATCH
    assert verdict.message == (
        "the converted script failed after its last loss: NameError: name 'pbar'; "
        "the original ended cleanly (both made the same 1 loss)"
    )


def test_both_ending_early_with_the_same_losses_says_so():
    verdict = compare(Run([0.5, 0.4], "end"), Run([0.5, 0.4], "end"), 5, 60)
    assert verdict.status == OK
    assert verdict.message == "all 2 losses identical (both scripts ended before 5 steps)"


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (Run([0.1], "timeout", "timed out"), "did not reach 3 losses within 60 s"),
        (Run([], "error", "FileNotFoundError: data.csv"), "failed after 0 losses: FileNotFound"),
        (Run([], "exit", "SystemExit: 2"), "failed after 0 losses: SystemExit: 2"),
        (Run([], "end"), "ended without back-propagating a loss"),
    ],
)
def test_an_original_that_cannot_be_compared_is_unverified(original, expected):
    verdict = compare(original, Run(ended="skipped"), 3, 60)
    assert verdict.status == UNVERIFIED
    assert expected in verdict.message and verdict.hint


# --- the scratch mirror and the write guard --------------------------------------------------


@pytest.fixture
def project(tmp_path):
    user = tmp_path / "user"
    (user / "data").mkdir(parents=True)
    (user / "data" / "train.csv").write_text("1,2\n")
    (user / "ckpt.pt").write_text("old")
    mirror = tmp_path / "scratch" / "fs"
    mirror.mkdir(parents=True)
    runner.populate(str(mirror), os.sep)
    mirror_user = mirror.joinpath(*user.parts[1:])
    runner.materialize(str(mirror_user), str(mirror), "dir")
    return user, mirror, mirror_user


def test_mirror_reads_the_users_files(project):
    _, _, mirror_user = project
    assert (mirror_user / "data" / "train.csv").read_text() == "1,2\n"
    assert not mirror_user.is_symlink() and (mirror_user / "data").is_symlink()


def test_writes_through_the_mirror_stay_in_scratch(project):
    user, mirror, mirror_user = project
    guard = runner._Guard(str(mirror), [str(user)])
    target = mirror_user / "data" / "new.csv"
    guard("open", (str(target), "w", 0))  # the audit event before open(..., "w")
    target.write_text("x")
    ckpt = mirror_user / "ckpt.pt"
    guard("open", (str(ckpt), "wb", 0))
    ckpt.write_text("new")
    log = mirror_user / "data" / "train.csv"
    guard("open", (str(log), "a", 0))  # append: the content is copied first
    with open(log, "a") as handle:
        handle.write("3,4\n")
    assert log.read_text() == "1,2\n3,4\n"
    assert sorted(os.listdir(user / "data")) == ["train.csv"]
    assert (user / "data" / "train.csv").read_text() == "1,2\n"
    assert (user / "ckpt.pt").read_text() == "old"
    assert guard.blocked == []


def test_writes_into_the_project_by_absolute_path_are_blocked(project):
    user, mirror, _ = project
    guard = runner._Guard(str(mirror), [str(user)])
    with pytest.raises(PermissionError, match="is blocked: the script writes into your project"):
        guard("open", (str(user / "ckpt.pt"), "wb", 0))
    with pytest.raises(PermissionError):
        guard("os.mkdir", (str(user / "runs"), 0o777, -1))
    guard("open", (str(user / "ckpt.pt"), "rb", 0))  # reading is fine
    guard("open", (str(user / "ckpt.pt"), None, os.O_RDONLY))
    assert guard.blocked == [str((user / "ckpt.pt").resolve()), str((user / "runs").resolve())]


HOOKED = """\
import os, sys
from torch_scaffold.convert import _verify_runner as runner
mirror, user, work = sys.argv[1:]
guard = runner._Guard(mirror, [user])
sys.addaudithook(guard)
os.chdir(work)
guard.check("ckpt.pt", "drop")  # what the torch.save wrapper does before C++ opens the file
with open("ckpt.pt", "w") as f:
    f.write("new")
os.makedirs("runs/1")
with open("data/train.csv", "a") as f:
    f.write("3,4\\n")
try:
    open(os.path.join(user, "escape.txt"), "w")
except PermissionError as err:
    print(err)
"""


def test_the_audit_hook_redirects_writes_of_a_real_process(project, tmp_path):
    """The guard installed with sys.addaudithook, in a process of its own: its own file
    operations (unlink, mkdir, symlink) must not trip it."""
    user, mirror, mirror_user = project
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    done = subprocess.run(
        [sys.executable, "-c", HOOKED, str(mirror), str(user), str(mirror_user)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"changing {user / 'escape.txt'} is blocked: the script writes into" in done.stdout
    assert (mirror_user / "ckpt.pt").read_text() == "new"
    assert (mirror_user / "data" / "train.csv").read_text() == "1,2\n3,4\n"
    assert (mirror_user / "runs" / "1").is_dir()
    assert listing(user) == ["ckpt.pt", "data"] and listing(user / "data") == ["train.csv"]
    assert (user / "ckpt.pt").read_text() == "old"
    assert (user / "data" / "train.csv").read_text() == "1,2\n"


SANDBOX = """\
import os, sys
from torch_scaffold.convert import _verify_runner as runner
mirror, user, work = sys.argv[1:]
guard = runner._Guard(mirror, [user])
sys.addaudithook(guard)
os.chdir(work)
# metadata through a mirrored ../data link, and on a file in the current folder
os.chmod("../data/train.csv", 0)
os.utime("../data/train.csv", (0, 0))
os.chmod("../data", 0o700)
os.setxattr("notes.txt", "user.verify", b"1")
mtime = os.stat("../data/train.csv").st_mtime
# the atomic save: a temporary file renamed over the old checkpoint, an old one removed
with open("ckpt.pt.tmp", "w") as f:
    f.write("new")
os.replace("ckpt.pt.tmp", "ckpt.pt")
os.remove("old.pt")
os.rename("notes.txt", "notes.bak")
os.link("../data/train.csv", "hard.csv")  # then written: must not reach the user's file
with open("hard.csv", "a") as f:
    f.write("3,4\\n")
with open("../data/val.csv") as f:  # read only: fchmod must not reach the user's file
    try:
        os.fchmod(f.fileno(), 0)
    except PermissionError as err:
        print(err)
print(sorted(os.listdir(".")), open("ckpt.pt").read(), mtime)
"""


def test_metadata_changes_and_atomic_saves_stay_in_the_scratch_folder(tmp_path):
    """chmod/utime through ../data and setxattr in the current folder change private copies;
    a temporary file renamed over a checkpoint, a removed or renamed file, are allowed."""
    user = tmp_path / "user"
    (user / "data").mkdir(parents=True)
    (user / "data" / "train.csv").write_text("1,2\n")
    (user / "data" / "val.csv").write_text("5,6\n")
    work = user / "work"
    work.mkdir()
    for name, text in (("ckpt.pt", "old"), ("old.pt", "older"), ("notes.txt", "n")):
        (work / name).write_text(text)
    before = {p: (p.stat().st_mode, p.stat().st_mtime) for p in user.rglob("*")}
    mirror = tmp_path / "scratch" / "fs"
    mirror.mkdir(parents=True)
    runner.populate(str(mirror), os.sep)
    mirror_work = mirror.joinpath(*work.parts[1:])
    runner.materialize(str(mirror_work), str(mirror), "dir")
    done = subprocess.run(
        [sys.executable, "-c", SANDBOX, str(mirror), str(work), str(mirror_work)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"scaffold convert --verify: changing {user / 'data' / 'val.csv'} is blocked: "
        "the script changes a file it opened only for reading"
    )
    assert lines[1] == "['ckpt.pt', 'hard.csv', 'notes.bak'] new 0.0"
    after = {p: (p.stat().st_mode, p.stat().st_mtime) for p in user.rglob("*")}
    assert after == before
    assert os.getxattr(mirror_work / "notes.bak", "user.verify") == b"1"
    assert os.listxattr(work / "notes.txt") == []
    assert listing(work) == ["ckpt.pt", "notes.txt", "old.pt"]
    assert (work / "ckpt.pt").read_text() == "old"
    assert (user / "data" / "train.csv").read_text() == "1,2\n"


def test_a_block_says_why(project):
    user, mirror, _ = project
    guard = runner._Guard(str(mirror), [str(user)])
    with pytest.raises(PermissionError, match="the script writes into your project by absolute"):
        guard("os.chmod", (str(user / "ckpt.pt"), 0, None))
    assert guard.reasons == ["writes into your project by absolute path"]


# --- options -------------------------------------------------------------------------------

SCRIPT = """\
import torch

model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    optimizer.zero_grad()
    loss = model(torch.ones(2)).sum()
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--verify", "--check"), "--verify and --check cannot be combined"),
        (("--verify", "--steps", "0"), "--steps must be at least 1, not 0"),
        (
            ("--verify", "--steps", "most"),
            "--steps must be a number of losses or 'all', not 'most'",
        ),
        (("--verify", "--timeout", "0"), "--timeout must be positive, not 0"),
        (("--", "--lr", "1"), "unexpected argument '--lr': scaffold convert takes one script"),
    ],
)
def test_bad_verify_options_are_exit_2(tmp_path, args, message):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = invoke(path, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}")
    assert listing(tmp_path) == ["train.py"]


def test_verify_needs_a_file_not_stdin():
    result = CliRunner().invoke(main, ["convert", "-", "--verify"], input=SCRIPT)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --verify needs a script file, not stdin")


def test_help_documents_verify_and_its_exit_codes():
    result = CliRunner().invoke(main, ["convert", "--help"])
    for text in (
        "--verify",
        "--steps",
        "--timeout",
        "--python",
        "4  --verify: a loss or a weight tensor differs",
        "5  an internal converter error",
        "6  --verify could not compare",
        "130, 143  --verify stopped by Ctrl-C or SIGTERM",
        "--steps N|all",
    ):
        assert text in result.output


def test_verify_with_an_interpreter_that_does_not_exist_is_exit_6(tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    result = invoke("train.py", "--verify", "--python", tmp_path / "nope" / "python")
    assert result.exit_code == 6, result.output
    assert "--verify: the original script failed after 0 losses: cannot start " in result.stderr
    assert "hint: pass --python the path of a Python interpreter that has torch" in result.stderr
    assert listing(tmp_path) == ["train.py", "train_lightning.py"]


def test_verify_with_an_interpreter_without_torch_says_so(tmp_path, monkeypatch):
    """A Python without site-packages stands in for scaffold installed apart from torch."""
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    (tmp_path / "train.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    result = invoke("train.py", "--verify", "--python", python)
    assert result.exit_code == 6, result.output
    assert "ModuleNotFoundError: No module named 'torch'" in result.stderr
    assert "hint: pass --python with the interpreter that runs your script" in result.stderr


# --- real runs (torch and Lightning in subprocesses) ---------------------------------------

# Reads the user's data relative to the working folder and to __file__, writes a log at start,
# a checkpoint every epoch (a temporary file renamed over an existing one) and a file by its
# __file__-relative path, and
# would train for a million epochs: --verify must stop it after --steps losses.
TRAIN = """\
import argparse
import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--lr", type=float, default=0.05)
args = parser.parse_args()

try:
    import sections  # scaffold's convert/sections.py, beside the runner: not the script's
except ImportError:
    pass
else:
    raise SystemExit("the run imported scaffold's own modules")

rows = [list(map(float, line.split(","))) for line in open("data.csv")]
here = os.path.dirname(os.path.abspath(__file__))
scale = float(open(os.path.join(here, "scale.txt")).read())
with open("run.log", "w") as log:
    log.write("started\\n")
with open(os.path.join(here, "side.txt"), "w") as side:
    side.write("written next to the script\\n")
# metadata: through ../ (the mirrored parent folder) and in the current folder
project = os.path.basename(os.getcwd())
os.chmod(os.path.join("..", project, "data.csv"), 0o400)
os.utime(os.path.join("..", project, "scale.txt"), (0, 0))
if hasattr(os, "setxattr"):
    os.setxattr("ckpt.pt", "user.verify", b"1")

torch.manual_seed(3)
data = torch.tensor(rows) * scale
loader = DataLoader(TensorDataset(data[:, :3], data[:, 3:]), batch_size=4, shuffle=True)
model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
loss_fn = nn.MSELoss()

for epoch in range(args.epochs):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    torch.save(model.state_dict(), "ckpt.pt.tmp")  # the atomic save: over the old one
    os.replace("ckpt.pt.tmp", "ckpt.pt")
"""


@pytest.fixture
def user_project(tmp_path, monkeypatch):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    (folder / "data.csv").write_text(
        "".join(f"{i % 3},{i % 5},{i % 7},{(i * 7) % 11 / 10}\n" for i in range(24))
    )
    (folder / "scale.txt").write_text("0.5")
    (folder / "ckpt.pt").write_text("old")
    for path in folder.iterdir():
        path.chmod(0o644)
        os.utime(path, (1e9, 1e9))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return folder


def assert_untouched(folder, *extra):
    assert listing(folder) == sorted(["ckpt.pt", "data.csv", "scale.txt", "train.py", *extra])
    assert (folder / "ckpt.pt").read_text() == "old"
    for name in ("ckpt.pt", "data.csv", "scale.txt", "train.py"):  # modes, times, xattrs too
        info = (folder / name).stat()
        assert (info.st_mode & 0o777, info.st_mtime) == (0o644, 1e9), name
        assert not hasattr(os, "listxattr") or os.listxattr(folder / name) == [], name


@pytest.mark.slow
def test_verify_a_matching_conversion_stops_after_n_steps_and_writes_nothing_else(user_project):
    started = time.monotonic()
    result = invoke("train.py", "--verify", "--steps", "8", "--", "--epochs", "1000000")
    assert result.exit_code == 0, result.output
    assert "verify: first 8 losses identical (original and converted, seed 0;" in result.output
    assert time.monotonic() - started < 300  # a million epochs were not trained
    assert_untouched(user_project, "train_lightning.py")


@pytest.mark.slow
def test_verify_a_conversion_that_trains_differently_is_exit_4(user_project, monkeypatch):
    real = convert_pkg.convert_source

    def patched(source, filename="<stdin>", **kwargs):
        conversion = real(source, filename, **kwargs)
        # a real change of training: the converted model starts from other weights
        conversion.code = conversion.code.replace("torch.manual_seed(3)", "torch.manual_seed(4)")
        return conversion

    monkeypatch.setattr(convert_pkg, "convert_source", patched)
    result = invoke("train.py", "--verify", "--steps", "4", "--", "--epochs", "2")
    assert result.exit_code == 4, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: train.py: --verify: loss 1 differs: original ")
    assert lines[0].endswith("(from the first loss on); train_lightning.py is kept for review")
    assert lines[1].startswith("hint: ") and len(lines) == 2
    assert "torch.manual_seed(4)" in (user_project / "train_lightning.py").read_text()
    assert_untouched(user_project, "train_lightning.py")


@pytest.mark.slow
def test_verify_whole_runs_compares_every_loss_and_the_final_weights(user_project, monkeypatch):
    result = invoke("train.py", "--verify", "--steps", "all", "--", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "verify: all 12 losses identical (whole runs) (original and converted" in result.output
    assert "verify: final weights identical (4 tensors)" in result.output
    real = convert_pkg.convert_source

    def patched(source, filename="<stdin>", **kwargs):
        conversion = real(source, filename, **kwargs)
        # after its last loss, the converted script changes the model: only the weights show it
        conversion.code += "\nwith torch.no_grad():\n    model[2].bias.add_(1.0)\n"
        return conversion

    monkeypatch.setattr(convert_pkg, "convert_source", patched)
    result = invoke("train.py", "--force", "--verify", "--steps", "all", "--", "--epochs", "2")
    assert result.exit_code == 4, result.output
    assert result.stderr.splitlines()[0] == (
        "error: train.py: --verify: final weights differ: first differing tensor 2.bias "
        "(largest difference 1); all 12 losses agree; train_lightning.py is kept for review"
    )
    assert_untouched(user_project, "train_lightning.py")


@pytest.mark.slow
def test_verify_timeout_is_one_error_line_and_exit_6(user_project):
    (user_project / "train.py").write_text("import time\n\ntime.sleep(120)\n" + TRAIN)
    os.utime(user_project / "train.py", (1e9, 1e9))  # as the fixture left it
    started = time.monotonic()
    result = invoke("train.py", "--verify", "--timeout", "3", "--", "--epochs", "2")
    assert time.monotonic() - started < 60
    assert result.exit_code == 6, result.output
    assert result.stderr.splitlines()[0] == (
        "error: train.py: --verify: the original script did not reach 20 losses within 3 s "
        "(stopped after 0); nothing compared; train_lightning.py is kept for review"
    )
    assert result.stderr.splitlines()[1] == "hint: raise --timeout, or lower --steps"
    assert_untouched(user_project, "train_lightning.py")


@pytest.mark.slow
def test_verify_an_original_that_fails_is_exit_6(user_project):
    result = invoke("train.py", "--verify")  # --epochs is required: argparse exits 2
    assert result.exit_code == 6, result.output
    assert "--verify: the original script failed after 0 losses: SystemExit: 2" in result.stderr
    assert "pass the script's arguments after --" in result.stderr
    assert_untouched(user_project, "train_lightning.py")


@pytest.mark.slow
def test_verify_a_notebook(tmp_path, monkeypatch):
    shutil.copy(REPO / "tests" / "fixtures" / "notebooks" / "plane.ipynb", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = invoke("plane.ipynb", "--verify", "--steps", "5")
    assert result.exit_code == 0, result.output
    assert "verify: first 5 losses identical" in result.output
    assert listing(tmp_path) == ["plane.ipynb", "plane_lightning.ipynb"]


def test_two_scripts_are_a_usage_error(tmp_path):
    """One script per conversion (--check takes several, see test_pre_commit_hooks.py): exit 2,
    nothing converted."""
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(SCRIPT)
    result = invoke(tmp_path / "a.py", tmp_path / "b.py")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: unexpected argument '{tmp_path / 'b.py'}': scaffold")
    assert listing(tmp_path) == ["a.py", "b.py"]


def test_the_hint_names_the_blocked_change_and_why():
    original = Run(
        [],
        "error",
        "PermissionError: blocked",
        blocked=["/proj/ckpt.pt"],
        blocked_why=["changes a file it opened only for reading"],
    )
    verdict = compare(original, Run(ended="skipped"), 3, 60)
    assert verdict.status == UNVERIFIED
    assert verdict.hint.startswith(
        "--verify blocked a change to /proj/ckpt.pt (the script changes a file it opened only "
        "for reading)"
    )


# A stand-in interpreter: it notes its pid and its child's, then waits for ever, as a script
# stuck in training (with a DataLoader worker) would.
HANGING_PYTHON = """\
#!/bin/sh
sleep 1000 &
echo "$$ $!" > "{pids}.tmp"
mv "{pids}.tmp" "{pids}"
wait
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "code", "name"), [(15, 143, "SIGTERM"), (2, 130, "SIGINT")])
def test_a_signal_stops_the_runs_and_removes_their_folders(tmp_path, signum, code, name):
    pids = tmp_path / "pids"
    python = tmp_path / "python"
    python.write_text(HANGING_PYTHON.format(pids=pids))
    python.chmod(0o755)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "train.py").write_text(SCRIPT)
    temp = tmp_path / "temp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp), PYTHONPATH=str(REPO / "src"))
    scaffold = subprocess.Popen(
        [sys.executable, "-m", "torch_scaffold", "convert", "train.py", "--verify"]
        + ["--python", str(python)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner_pid, child_pid = map(int, pids.read_text().split())
    assert listing(temp)[0].startswith("scaffold-verify-")
    scaffold.send_signal(signum)
    try:
        _, stderr = scaffold.communicate(timeout=60)
    finally:  # whatever the outcome, leave no stand-in running
        for pid in (runner_pid, child_pid):
            if _alive(pid):
                os.kill(pid, 9)
    assert scaffold.returncode == code
    assert stderr == (
        f"error: train.py: --verify: stopped by {name}; the runs were ended and their scratch "
        "folders removed; train_lightning.py is kept\n"
    )
    deadline = time.monotonic() + 10  # SIGKILL is delivered, but not at once under load
    while (_alive(runner_pid) or _alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(runner_pid) and not _alive(child_pid)
    assert listing(temp) == []
    assert listing(project) == ["train.py", "train_lightning.py"]


WEIGHTS = """\
import json, sys
import torch
from torch import nn
from torch_scaffold.convert._verify_weights import Weights

mode, path = sys.argv[1:]
weights = Weights(torch)
weights.install()


class LightningModule(nn.Module):  # stands in for Lightning's: a wrapper is never the model
    pass


class Lit(LightningModule):
    def __init__(self, model):
        super().__init__()
        self.model = model


def train():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    owner = model if mode == "original" else Lit(model)
    for _ in range(2):  # made again each round, over the same parameters
        optimizer = torch.optim.SGD(owner.parameters(), lr=0.1)
        optimizer.zero_grad()
        model(torch.randn(4, 2)).pow(2).mean().backward()
        weights.look_up()  # what the runner does at each loss
        optimizer.step()
    if mode == "bumped":
        with torch.no_grad():
            model[1].bias.add_(0.5)


train()  # its locals are gone when the weights are taken, as after a script's main()
result = weights.save(path, torch.save) if mode == "original" else weights.compare(path)
print(json.dumps(result))
print(json.dumps([name for name, _ in weights.named()]))
"""


@pytest.mark.slow
def test_the_weights_are_the_model_a_lightning_wrapper_holds(tmp_path):
    saved = tmp_path / "weights.pt"

    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", WEIGHTS, mode, str(saved)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1"),
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    names = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"]
    names.append("1.num_batches_tracked")
    assert run("original") == [{"count": 7}, names]
    assert run("converted") == [{"count": 7, "exact": True}, names]
    result, _ = run("bumped")
    assert result == {"count": 7, "tensor": "1.bias", "why": "largest difference 0.5"}


def test_a_converted_run_that_was_blocked_names_the_change():
    converted = Run(
        [0.5],
        "error",
        "PermissionError: blocked",
        blocked=["/proj/out.log"],
        blocked_why=["writes into your project by absolute path"],
    )
    verdict = compare(Run([0.5, 0.4], "steps"), converted, 2, 60)
    assert verdict.status == MISMATCH
    assert verdict.hint.startswith("--verify blocked a change to /proj/out.log (the script ")
