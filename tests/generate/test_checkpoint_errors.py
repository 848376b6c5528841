"""A bad checkpoint is one clear error line and exit code 2 in both styles, whether it is read
to resume (`--resume PATH`) or to test the best weights (best.ckpt, after training).

Every checkpoint this project saves ends with its SHA-256 (in the zip archive's comment), so a
file changed after it was written is refused too. The catalogue below lists each bad file with
its exact error line; `{path}` stands for the file, `{error}` for the name of the exception
torch raised (which differs between torch versions). The test path puts the file in place of
best.ckpt and resumes a finished run (`--resume last`, no epoch left): the run goes straight to
testing the best weights. None may end in a traceback from deep inside torch or Lightning.
"""

from __future__ import annotations

import os
import random
import re
import shutil
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
        "data.test_split": 0.2,
        "trainer.early_stopping.enabled": False,
        "logging.csv": False,
        "logging.tensorboard": False,
    }
)
ARGV = ["--accelerator", "cpu", "--max-epochs", "1"]
KEYS = {"pytorch": "optimizer", "lightning": "optimizer_states"}
KIND = {"pytorch": "plain PyTorch", "lightning": "Lightning"}
CONFIG = {"pytorch": "config", "lightning": "hyper_parameters.config"}
NOT_OURS = "not a checkpoint this project wrote"
UNREADABLE = "not a readable checkpoint: truncated, corrupt or not written by torch.save"
CHANGED = (
    "does not match the SHA-256 checksum it was saved with: the file changed after it was"
    " written (a flipped bit, a partial copy or an edit), so it is not used"
)


class Opaque:
    """A class a checkpoint must not be allowed to instantiate (weights_only loading)."""


class Payload:
    """A pickled os.system call (the issue's payload), writing a marker file if it runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _train(spec, style: str, folder: Path) -> Path:
    package = build_context(spec, style)["package_name"]
    write_files(render_project(spec, style), folder)
    with project_module(folder, package) as train:
        train.main([*ARGV, "--name", "run"])
    assert (folder / "outputs" / "run" / "checkpoints" / "last.ckpt").is_file()
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, torch_one_thread):
    """{style: project folder} trained one epoch (outputs/run/checkpoints/{best,last}.ckpt), and
    {("other", style): folder} for a model with another shape."""
    root = tmp_path_factory.mktemp("resume-errors")
    made = {}
    wider = spec_with(**{**_changes(SPEC), "model.hidden_sizes": (24,)})
    for style in STYLES:
        made[style] = _train(SPEC, style, root / style)
        made["other", style] = _train(wider, style, root / f"other-{style}")
    return made


def _changes(spec) -> dict:
    """The spec_with() changes that make SPEC (to derive a variant of it)."""
    return {
        "name": spec.name,
        "model.hidden_sizes": spec.model.hidden_sizes,
        "data.num_samples": spec.data.num_samples,
        "data.test_split": spec.data.test_split,
        "trainer.early_stopping.enabled": spec.trainer.early_stopping.enabled,
        "logging.csv": spec.logging.csv,
        "logging.tensorboard": spec.logging.tensorboard,
    }


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x10
    return bytes(changed)


def _catalogue(trained, style: str) -> dict[str, tuple[object, str]]:
    """name -> (what to put at the checkpoint's path, its exact error line with {path}).

    What to put: bytes (a file), "folder", "/dev/zero" (a link to it), or a callable that
    writes the file at the path it is given."""
    import torch

    folder = trained[style]
    last = (folder / "outputs" / "run" / "checkpoints" / "last.ckpt").read_bytes()
    other_style = trained["lightning" if style == "pytorch" else "pytorch"]
    rng = random.Random(2)

    def forged(field: str, value: object = None):
        """Writes last.ckpt with `field` (dotted) set to `value` (None: removed), sealed by the
        project's own writer, as a forger would."""

        def write(path: Path) -> None:
            state = torch.load(
                folder / "outputs" / "run" / "checkpoints" / "last.ckpt", weights_only=True
            )
            *parents, name = field.split(".")
            node = state
            for parent in parents:
                node = node[parent]
            if value is None:
                del node[name]
            else:
                node[name] = value
            with project_module(folder, "resume_errors", "checkpoint") as checkpoint:
                checkpoint.save_checkpoint(state, path)

        return write

    def unsealed(path: Path) -> None:  # the right contents, written by plain torch.save
        torch.save(
            torch.load(folder / "outputs" / "run" / "checkpoints" / "last.ckpt", weights_only=True),
            path,
        )

    def python_objects(path: Path) -> None:
        torch.save({"model": Opaque()}, path)

    def payload(path: Path) -> None:  # a marker beside it, never written: see _put
        torch.save({"model": Payload(path.with_name("marker"))}, path)

    def other_model(path: Path) -> None:
        shutil.copy(trained["other", style] / "outputs" / "run" / "checkpoints" / "best.ckpt", path)

    def other_style_file(path: Path) -> None:
        shutil.copy(other_style / "outputs" / "run" / "checkpoints" / "last.ckpt", path)

    prefix = "" if style == "pytorch" else "model."
    return {
        "zero bytes": (b"", "{path}: not a readable checkpoint: the file is empty (0 bytes)"),
        "truncated to half": (last[: len(last) // 2], f"{{path}}: {UNREADABLE} ({{error}})"),
        "truncated to 100 bytes": (last[:100], f"{{path}}: {UNREADABLE} ({{error}})"),
        "one flipped bit in the weights": (_flip(last, len(last) // 2), f"{{path}}: {CHANGED}"),
        "one flipped bit in the checksum": (_flip(last, len(last) - 5), f"{{path}}: {CHANGED}"),
        "random bytes": (rng.randbytes(4096), f"{{path}}: {UNREADABLE} ({{error}})"),
        "text": (b"name: not a checkpoint\n", f"{{path}}: {UNREADABLE} ({{error}})"),
        "another model's weights": (
            other_model,
            (
                f"{{path}}: {prefix}net.1.weight has shape [24, 20] in the checkpoint but [16, 20]"
                " in this model; was it trained with another config?"
            ),
        ),
        "a key missing": (
            forged(KEYS[style]),
            f"{{path}}: not a checkpoint of this {KIND[style]} project (missing {KEYS[style]})",
        ),
        "the other style's checkpoint": (
            other_style_file,
            f"{{path}}: not a checkpoint of this {KIND[style]} project (missing "
            + (
                "model, optimizer)"
                if style == "pytorch"
                else "state_dict, optimizer_states, loops)"
            ),
        ),
        "no checksum": (
            unsealed,
            (
                "{path}: has no checksum, so its integrity cannot be checked: it was not saved by"
                " this project's training"
            ),
        ),
        "Python objects": (
            python_objects,
            (
                f"{{path}}: {NOT_OURS}: it holds Python objects other than tensors and plain data;"
                " not loaded, as unpickling them could run code"
            ),
        ),
        "an os.system payload": (
            payload,
            (
                f"{{path}}: {NOT_OURS}: it holds Python objects other than tensors and plain data;"
                " not loaded, as unpickling them could run code"
            ),
        ),
        "epoch of another type": (
            forged("epoch", "3"),
            f"{{path}}: epoch: is str, not int: {NOT_OURS}",
        ),
        "the config missing": (
            forged(CONFIG[style]),
            f"{{path}}: {CONFIG[style]}: is missing: {NOT_OURS}",
        ),
        "the config of another type": (
            forged(CONFIG[style], ["adamw"]),
            f"{{path}}: {CONFIG[style]}: is list, not dict: {NOT_OURS}",
        ),
        "the optimizer name of another type": (
            forged(f"{CONFIG[style]}.optimizer.name", 7),
            f"{{path}}: {CONFIG[style]}.optimizer.name: is int, not str: {NOT_OURS}",
        ),
        "a folder": ("folder", "{path}: is a folder, not a checkpoint file"),
        "/dev/zero": (
            "/dev/zero",
            "{path}: is not a regular file (a device, pipe or socket), so it cannot be a checkpoint",
        ),
    }


CASES = [
    "zero bytes",
    "truncated to half",
    "truncated to 100 bytes",
    "one flipped bit in the weights",
    "one flipped bit in the checksum",
    "random bytes",
    "text",
    "another model's weights",
    "a key missing",
    "the other style's checkpoint",
    "no checksum",
    "Python objects",
    "an os.system payload",
    "epoch of another type",
    "the config missing",
    "the config of another type",
    "the optimizer name of another type",
    "a folder",
    "/dev/zero",
]


def _matches(line: str, message: str, path: Path) -> bool:
    pattern = re.escape("error: " + message.format(path=path, error="{error}"))
    return re.fullmatch(pattern.replace(re.escape("{error}"), "[A-Za-z]+"), line) is not None


def _put(what: object, path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    if what == "folder":
        path.mkdir()
    elif what == "/dev/zero":
        path.symlink_to("/dev/zero")
    elif isinstance(what, bytes):
        path.write_bytes(what)
    else:
        what(path)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_to_resume_from_is_one_clear_error(trained, style, case, tmp_path, capsys):
    what, message = _catalogue(trained, style)[case]
    path = tmp_path / "bad.ckpt"
    _put(what, path)
    folder = trained[style]
    with project_module(folder, "resume_errors") as train:
        line = expect_clear_error(train, [*ARGV, "--resume", str(path)], capsys)
    assert _matches(line, message, path), line
    assert not path.with_name("marker").exists()  # the payload never ran


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES)
def test_bad_best_checkpoint_to_test_is_one_clear_error(trained, style, case, tmp_path, capsys):
    """The finished run resumed with no epoch left: it tests best.ckpt, which is `case`."""
    what, message = _catalogue(trained, style)[case]
    outputs = tmp_path / "outputs"
    shutil.copytree(trained[style] / "outputs", outputs, symlinks=True)
    best = outputs / "run" / "checkpoints" / "best.ckpt"
    _put(what, best)
    with project_module(trained[style], "resume_errors") as train:
        argv = [*ARGV, "--output-dir", str(outputs), "--resume", "last"]
        line = expect_clear_error(train, argv, capsys)
    assert _matches(line, message, best), line
    assert not best.with_name("marker").exists()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_missing_checkpoint_to_resume_from_is_one_clear_error(trained, style, tmp_path, capsys):
    path = tmp_path / "missing.ckpt"
    with project_module(trained[style], "resume_errors") as train:
        line = expect_clear_error(train, [*ARGV, "--resume", str(path)], capsys)
    assert line == f"error: --resume {path}: no checkpoint file at {path}"


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_checkpoint_of_another_model_shape_is_one_clear_error(trained, style, capsys):
    folder = trained[style]
    before = (folder / "outputs" / "run" / "checkpoints" / "last.ckpt").read_bytes()
    with project_module(folder, "resume_errors") as train:
        # a new run from the checkpoint (resuming the run itself keeps its model)
        checkpoint = str(Path("outputs", "run", "checkpoints", "last.ckpt"))
        argv = [*ARGV, "--max-epochs", "2", "--resume", checkpoint, "--name", "other"]
        expect_clear_error(
            train, [*argv, "--set", "model.hidden_sizes=[7]"], capsys, "last.ckpt", "shape"
        )
        expect_clear_error(
            train, [*argv, "--set", "model.hidden_sizes=[16,16]"], capsys, "different model"
        )
    # a refused resume leaves the checkpoint as it was, and starts no run
    assert (folder / "outputs" / "run" / "checkpoints" / "last.ckpt").read_bytes() == before
    assert not (folder / "outputs" / "other").exists()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_resume_last_with_nothing_saved_is_one_clear_error(trained, style, capsys, tmp_path):
    empty = tmp_path / "fresh-outputs"
    with project_module(trained[style], "resume_errors") as train:
        argv = [*ARGV, "--output-dir", str(empty), "--resume", "last"]
        expect_clear_error(train, argv, capsys, "--resume last", "no run in")
    assert not empty.exists()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_resume_in_a_project_without_checkpoints_is_one_clear_error(style, tmp_path, capsys):
    spec = spec_with(**{"name": "no-checkpoints", "trainer.checkpoint.enabled": False})
    package = build_context(spec, style)["package_name"]
    folder = write_files(render_project(spec, style), tmp_path / style)
    with project_module(folder, package) as train:
        expect_clear_error(train, [*ARGV, "--resume", "last"], capsys, "checkpointing switched off")


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_any_flipped_bit_is_refused(trained, style, tmp_path):
    """One flipped bit anywhere in a checkpoint (the first and last bytes, where the archive's
    records and the checksum live, and a sample of the rest) never loads: the checksum no
    longer matches, or the file has no checksum left, or it no longer reads at all."""
    folder = trained[style]
    data = (folder / "outputs" / "run" / "checkpoints" / "last.ckpt").read_bytes()
    rng = random.Random(7)
    positions = {*range(64), *range(len(data) - 200, len(data))}
    positions |= set(rng.sample(range(len(data)), 300))
    path = tmp_path / "flipped.ckpt"
    with project_module(folder, "resume_errors", "checkpoint") as checkpoint:
        checkpoint.load_checkpoint(
            folder / "outputs" / "run" / "checkpoints" / "last.ckpt"
        )  # intact
        for position in sorted(positions):
            for bit in (0x01, 0x80):
                changed = bytearray(data)
                changed[position] ^= bit
                path.write_bytes(changed)
                with pytest.raises(checkpoint.CheckpointError):
                    checkpoint.load_checkpoint(path)


def _copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _test_metrics(folder: Path, argv: list[str]) -> dict[str, float]:
    with project_module(folder, "resume_errors") as train:
        metrics = train.main(argv)
    return {name: value for name, value in metrics.items() if name.startswith("test_")}


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_moved_output_folder_resumes_and_tests_its_own_best(trained, style, tmp_path):
    """`cp -a orig moved; rm -rf orig`, then --resume last in moved: the paths a checkpoint
    records are relative to its folder, so the run finds its best.ckpt, and never the best
    of whatever run lives at the old place now."""
    original = _copy_project(trained[style], tmp_path / "orig")
    # one more epoch, in orig: its checkpoints are written there
    _test_metrics(original, [*ARGV, "--max-epochs", "2", "--resume", "last"])
    resume = [*ARGV, "--max-epochs", "2", "--resume", "last"]  # nothing left to train: a test
    reference = _test_metrics(original, resume)
    moved = _copy_project(original, tmp_path / "moved")
    shutil.rmtree(original)
    assert _test_metrics(moved, resume) == reference
    # the old place holds another run now (another seed, other weights): moved still tests
    # its own best.ckpt
    shutil.copytree(trained[style], original, ignore=shutil.ignore_patterns("outputs"))
    assert _test_metrics(original, [*ARGV, "--seed", "7"]) != reference
    assert _test_metrics(_copy_project(moved, tmp_path / "moved-again"), resume) == reference


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_full_disk_while_saving_is_one_clear_error(trained, style, tmp_path):
    """A file size limit (as a full disk) hit while writing a checkpoint: one error line and
    exit 2, the checkpoints saved before are kept, and no temporary file is left."""
    import resource
    import subprocess
    import sys

    project = _copy_project(trained[style], tmp_path / "project")
    checkpoints = project / "outputs" / "run" / "checkpoints"
    before = {path.name: path.read_bytes() for path in checkpoints.iterdir()}
    limit = len(before["last.ckpt"]) // 2

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "resume_errors.train",
            *ARGV,
            "--max-epochs",
            "2",
            "--resume",
            "last",
        ],
        cwd=project,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [
        line for line in re.split(r"[\r\n]", result.stderr) if line.startswith(("error:", "hint:"))
    ]
    assert len(lines) == 2, result.stderr
    assert re.fullmatch(
        r"error: \S*outputs/run/checkpoints/(best|last)\.ckpt: cannot save the checkpoint: File too large",
        lines[0],
    ), lines[0]
    assert lines[1] == (
        "hint: raise the file size limit (ulimit -f) or use another file system; the checkpoints"
        " saved before are kept (--resume last)"
    )
    assert {path.name: path.read_bytes() for path in checkpoints.iterdir()} == before
