"""A sharded (FSDP) checkpoint folder never runs code and is sealed, in both styles.

torch.distributed.checkpoint reads a folder's `.metadata` with pickle.load, so a shared folder
could run its author's code on `--resume`, `test`, `predict` and `export`. The generated
projects seal every folder with a manifest of its files' SHA-256 (sha256sums.txt), verified
before any file is read, and read `.metadata` with an unpickler that builds only DCP's
metadata classes: a planted payload is refused even with a manifest forged to match it.

The folders are made in one process, in-process: the plain style's by its own training (FSDP
on CPU, one process), Lightning's (whose FSDP needs GPUs) by the project's own
SealedFSDPStrategy from a checkpoint trained without FSDP. Every command runs in-process too.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import expect_clear_error, spec_with, write_files
from .inprocess import project_module

STYLES = ("pytorch", "lightning")
PACKAGE = "sealed_shards"
SPEC = spec_with(
    **{
        "name": "sealed-shards",
        "model.hidden_sizes": (16,),
        "data.num_samples": 96,
        "data.test_split": 0.2,
        "trainer.strategy": "fsdp",
        "trainer.early_stopping.enabled": False,
        "logging.csv": False,
        "logging.tensorboard": False,
    }
)
ARGV = ["--accelerator", "cpu", "--max-epochs", "1"]
MANIFEST = "sha256sums.txt"
CHANGED = (
    "does not match the SHA-256 checksum it was saved with: the file changed after it was"
    " written (a flipped bit, a partial copy or an edit), so it is not used"
)
PLANTED = (
    "not a checkpoint this project wrote: it holds Python objects other than a sharded"
    " checkpoint's metadata (posix.system); not loaded, as unpickling them could run code"
)


class Payload:
    """What a planted .metadata holds: unpickling it runs `touch marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _lightning_folder(project: Path, checkpoint: Path, folder: Path) -> None:
    """The sharded folder Lightning's FSDP would write for `checkpoint`, by the project's own
    strategy (in one process, without GPUs: DCP writes one shard)."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    with project_module(project, PACKAGE, "checkpoint") as module:
        module.SealedFSDPStrategy(state_dict_type="sharded").save_checkpoint(state, folder)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, torch_one_thread):
    """{style: (project, its sharded checkpoint folder)}, trained one epoch."""
    root = tmp_path_factory.mktemp("sealed-shards")
    made = {}
    for style in STYLES:
        project = write_files(render_project(SPEC, style), root / style)
        checkpoints = project / "outputs" / "run" / "checkpoints"
        with project_module(project, PACKAGE) as train:
            if style == "pytorch":  # FSDP on CPU, one process: last.ckpt is a folder
                train.main([*ARGV, "--name", "run"])
                folder = checkpoints / "last.ckpt"
            else:  # Lightning's FSDP needs GPUs: train without it, then shard
                train.main([*ARGV, "--name", "run", "--set", "trainer.strategy=auto"])
                folder = checkpoints / "sharded.ckpt"
        if style == "lightning":
            _lightning_folder(project, checkpoints / "best.ckpt", folder)
        assert (folder / ".metadata").is_file() and (folder / MANIFEST).is_file()
        made[style] = project, folder
    return made


def _copy(folder: Path, target: Path) -> Path:
    shutil.copytree(folder, target)
    return target


def _plant(folder: Path, marker: Path, resealed_by: Path | None = None) -> None:
    """Replace .metadata by a payload that creates `marker`; with `resealed_by` (a project),
    forge the manifest to match it (as anyone can: it is a checksum, not a signature)."""
    (folder / ".metadata").write_bytes(pickle.dumps(Payload(marker)))
    if resealed_by is not None:
        with project_module(resealed_by, PACKAGE, "checkpoint_folders") as module:
            module.seal_folder(folder)


class Command:
    """A command of the generated project, in-process, for expect_clear_error."""

    def __init__(self, cli, args: list[str]) -> None:
        self.cli, self.args = cli, args

    def main(self, argv: list[str]) -> object:
        return self.cli.main([*self.args, *argv])


def _command(cli, name: str, checkpoint: Path, tmp_path: Path) -> tuple[Command, list[str]]:
    if name == "--resume":
        # no --accelerator cpu: Lightning refuses it with fsdp, and no GPU is found here
        return Command(cli, ["fit"]), ["--max-epochs", "1", "--resume", str(checkpoint)]
    argv = ["--ckpt", str(checkpoint)]
    if name == "predict":
        argv += ["--output", str(tmp_path / "predictions.csv")]
    if name == "export":
        argv += ["--format", "onnx", "--output", str(tmp_path / "model.onnx")]
    return Command(cli, [name]), argv


COMMANDS = ("--resume", "test", "predict", "export")


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_planted_metadata_never_runs(trained, style, command, tmp_path, capsys):
    """A payload as .metadata, with the manifest forged to match: the restricted unpickler
    refuses it, on every command that reads a checkpoint, and its code never runs."""
    project, folder = trained[style]
    planted, marker = _copy(folder, tmp_path / "shared" / "planted.ckpt"), tmp_path / "marker"
    _plant(planted, marker, resealed_by=project)
    with project_module(project, PACKAGE, "cli") as cli:
        runner, argv = _command(cli, command, planted, tmp_path)
        line = expect_clear_error(runner, argv, capsys)
    assert not marker.exists()
    assert line == f"error: {planted}/.metadata: {PLANTED}"
    assert not (tmp_path / "predictions.csv").exists() and not (tmp_path / "model.onnx").exists()


def _flip_shard(folder: Path) -> Path:
    shard = next(folder.glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    return shard


def _catalogue(folder: Path, marker: Path) -> dict[str, tuple[object, str]]:
    """name -> (what it does to the folder, its exact error line with {folder})."""

    def remove(name: str):
        return lambda: (folder / name).unlink()

    def garbled_manifest() -> None:
        path = folder / MANIFEST
        path.write_text(path.read_text().replace(" ", "  ", 1))

    return {
        "a flipped byte in a shard": (
            lambda: _flip_shard(folder),
            f"{{folder}}/__0_0.distcp: {CHANGED}",
        ),
        "a planted .metadata, manifest not forged": (
            lambda: _plant(folder, marker),
            f"{{folder}}/.metadata: {CHANGED}",
        ),
        "no manifest": (
            remove(MANIFEST),
            (
                f"{{folder}}: has no {MANIFEST}, so its integrity cannot be checked: it was not saved"
                " by this project's training"
            ),
        ),
        "a file added": (
            lambda: (folder / "extra.distcp").write_bytes(b"x"),
            (
                "{folder}: does not match the SHA-256 checksums it was saved with: extra.distcp was"
                " added after it was written, so it is not used"
            ),
        ),
        "a shard removed": (
            remove("__0_0.distcp"),
            (
                "{folder}: does not match the SHA-256 checksums it was saved with: __0_0.distcp was"
                " removed after it was written, so it is not used"
            ),
        ),
        "a garbled manifest": (
            garbled_manifest,
            (
                f"{{folder}}/{MANIFEST}: not a checkpoint this project wrote: not a checksum"
                " manifest of this project"
            ),
        ),
        "a shard replaced by a symlink": (
            lambda: _symlink_shard(folder),
            "{folder}/__0_0.distcp: cannot read (Too many levels of symbolic links)",
        ),
    }


def _symlink_shard(folder: Path) -> None:
    shard = folder / "__0_0.distcp"
    copy = folder.parent / "elsewhere.distcp"
    shutil.copy(shard, copy)
    shard.unlink()
    shard.symlink_to(copy)


CASES = (
    "a flipped byte in a shard",
    "a planted .metadata, manifest not forged",
    "no manifest",
    "a file added",
    "a shard removed",
    "a garbled manifest",
    "a shard replaced by a symlink",
)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES)
def test_a_changed_folder_is_refused_before_it_is_read(trained, style, case, tmp_path, capsys):
    """Each change to a sealed folder is one error line and exit 2 on `test` (which loaded
    a flipped shard silently before: test loss 0.526 -> 0.595 in the issue)."""
    project, folder = trained[style]
    changed, marker = _copy(folder, tmp_path / "checkpoints" / "changed.ckpt"), tmp_path / "marker"
    change, message = _catalogue(changed, marker)[case]
    change()
    with project_module(project, PACKAGE, "cli") as cli:
        line = expect_clear_error(Command(cli, ["test"]), ["--ckpt", str(changed)], capsys)
    assert line == "error: " + message.format(folder=changed)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_sealed_folder_tests_as_its_weights(trained, style, capsys):
    """The intact folder loads: `test --ckpt <folder>` (Lightning's was an IsADirectoryError)
    gives the metrics of the weights it holds."""
    project, folder = trained[style]
    with project_module(project, PACKAGE, "cli") as cli:
        metrics = cli.main(["test", "--ckpt", str(folder)])
        if style == "lightning":  # the folder was sharded from best.ckpt
            assert metrics == cli.main(["test", "--ckpt", str(folder.with_name("best.ckpt"))])
    assert set(metrics) == {"test_loss", "test_accuracy"}


def test_the_metadata_unpickler_reads_what_dcp_writes(tmp_path, torch_one_thread):
    """Every dtype, plain values (stored as bytes) and nested names: the restricted unpickler
    builds what DCP's own reader builds, and loads them back."""
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader

    # unformatted: checkpoint_folders.py is copied as written, and black takes seconds
    project = write_files(render_project(SPEC, "pytorch", format_code=False), tmp_path / "p")
    dtypes = (torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64, torch.bool)
    state = {
        "tensors": {str(dtype): torch.ones(3, 2, dtype=dtype) for dtype in dtypes},
        "values": {"epoch": 3, "name": "adamw", "betas": (0.9, 0.99), "none": None},
    }
    folder = tmp_path / "folder"
    dcp.save(state, checkpoint_id=folder, no_dist=True)
    with project_module(project, PACKAGE, "checkpoint_folders") as module:
        module.seal_folder(folder)
        ours = module.read_metadata(folder / ".metadata")
        loaded = {"tensors": {name: torch.zeros_like(t) for name, t in state["tensors"].items()}}
        loaded["values"] = {name: None for name in state["values"]}
        dcp.load(loaded, storage_reader=module.SealedReader(folder), no_dist=True)
    theirs = FileSystemReader(folder).read_metadata()
    assert ours.state_dict_metadata == theirs.state_dict_metadata
    assert ours.storage_data == theirs.storage_data
    for name, tensor in state["tensors"].items():
        assert torch.equal(loaded["tensors"][name], tensor)
    assert loaded["values"] == state["values"]


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_a_metadata_naming_a_file_outside_the_folder_is_refused(trained, style, tmp_path, capsys):
    """DCP's metadata names the file of each shard; forged (and resealed) to name a file
    outside the folder, which the manifest cannot cover, it is refused before any shard is
    read."""
    from torch.distributed.checkpoint import FileSystemReader

    project, folder = trained[style]
    forged = _copy(folder, tmp_path / "checkpoints" / "forged.ckpt")
    outside = shutil.copy(next(forged.glob("*.distcp")), tmp_path / "outside.distcp")
    metadata = FileSystemReader(folder).read_metadata()  # our own folder: trusted
    for shard in metadata.storage_data.values():
        shard.relative_path = f"../../{Path(outside).name}"
    (forged / ".metadata").write_bytes(pickle.dumps(metadata))
    with project_module(project, PACKAGE, "checkpoint_folders") as module:
        module.seal_folder(forged)
    with project_module(project, PACKAGE, "cli") as cli:
        line = expect_clear_error(Command(cli, ["test"]), ["--ckpt", str(forged)], capsys)
    assert line == (
        f"error: {forged}/.metadata: not a checkpoint this project wrote: its shards are not"
        " files of this folder"
    )
