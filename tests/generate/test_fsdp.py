"""FSDP2 in the plain style: 2 processes on CPU with gloo, launched by torchrun.

The checkpoints are sharded folders (torch.distributed.checkpoint); the tests read them
consolidated to one state dict, as a user would with `dcp_to_torch_save`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import spec_with, write_files
from .test_distributed import (
    BATCH,
    PACKAGE,
    PARITY_CHANGES,
    PROBE,
    _assert_no_threads_left,
    _epoch_losses,
    _flags,
    _max_difference,
    _run,
    _torchrun,
)

# As the DDP test's spec (no dropout, SGD, equal shards), sharded, with the two step-level
# features that sharding must keep exact: clipping by the global norm, and accumulation.
SPEC = spec_with(
    **PARITY_CHANGES,
    **{
        "trainer.strategy": "fsdp",
        "trainer.gradient_clip_val": 0.5,
        "trainer.accumulate_grad_batches": 2,
    },
)


def _weights(checkpoint: Path) -> dict:
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    consolidated = checkpoint.with_name(f"{checkpoint.name}.pt")
    dcp_to_torch_save(checkpoint, consolidated)
    return torch.load(consolidated, map_location="cpu", weights_only=True)["model"]


def _loop_state(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint / "loop.pt", map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def fsdp(tmp_path_factory):
    """The project, trained 3 epochs by 2 processes with batch B."""
    root = tmp_path_factory.mktemp("fsdp")
    project = write_files(render_project(SPEC, "pytorch"), root / "project")
    probe = [str(PROBE), str(project), PACKAGE, str(root / "weights"), "--"]
    _run([*_torchrun(2), *probe, *_flags(root / "fsdp", BATCH)], project)
    return project, root


@pytest.mark.slow
def test_fsdp_leaves_no_communication_thread_running(fsdp):
    """Regression: DTensor's sharding and redistribution caches held the device mesh, so the
    process group outlived destroy_process_group, and its gloo threads ended at interpreter
    exit, which now and then aborted a rank ("terminate called without an active
    exception"). No thread of it may be left when train.main returns."""
    _, root = fsdp
    _assert_no_threads_left(root / "weights")


@pytest.mark.slow
def test_fsdp_trains_and_writes_sharded_checkpoints(fsdp):
    _, root = fsdp
    losses = _epoch_losses(root / "fsdp")
    assert len(losses) == 3
    assert losses[-1] < losses[0] * 0.9, losses
    last = root / "fsdp/checkpoints/last.ckpt"
    shards = sorted(path.name for path in last.glob("*.distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"], shards  # one per rank
    # sealed by rank 0 once both ranks had written: every file, with its size and SHA-256
    manifest = (last / "sha256sums.txt").read_text().splitlines()
    assert manifest[0] == "torch-scaffold sha256 manifest"
    listed = {name: int(size) for _, size, name in (line.split(" ", 2) for line in manifest[1:])}
    files = {path.name: path.stat().st_size for path in last.iterdir()}
    assert listed == {name: size for name, size in files.items() if name != "sha256sums.txt"}
    assert set(listed) == {".metadata", "__0_0.distcp", "__1_0.distcp", "loop.pt"}
    assert _loop_state(last)["epoch"] == 3
    assert (root / "fsdp/checkpoints/best.ckpt/.metadata").is_file()
    assert not list((root / "fsdp/checkpoints").glob(".*"))  # no partial save left behind


@pytest.mark.slow
def test_fsdp_two_processes_match_one_process_with_double_batch(fsdp):
    project, root = fsdp
    _run([sys.executable, "-m", f"{PACKAGE}.train", *_flags(root / "single", 2 * BATCH)], project)
    single = _weights(root / "single/checkpoints/last.ckpt")
    sharded = _weights(root / "fsdp/checkpoints/last.ckpt")
    difference = _max_difference(single, sharded)
    print(
        f"FSDP 2 x batch {BATCH} vs 1 x batch {2 * BATCH}: max weight difference {difference:.2e}"
    )
    assert difference < 1e-5, difference
    for ours, theirs in zip(_epoch_losses(root / "fsdp"), _epoch_losses(root / "single")):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_fsdp_resume_is_exact_and_loads_at_one_process(fsdp):
    """2 epochs, then --resume last to 3 at 2 processes: bit-exact with 3 straight. Then the
    same sharded checkpoint continues in a single process (DCP reshards on load)."""
    project, root = fsdp
    command = [*_torchrun(2), "-m", f"{PACKAGE}.train"]
    flags = _flags(root / "resumed", BATCH)
    _run([*command, *flags, "--max-epochs", "2"], project)
    done = _run([*command, *flags, "--resume", "last"], project)
    assert done.stdout.count("resumed from") == 1, done.stdout  # printed by rank 0 only
    resumed = _weights(root / "resumed/checkpoints/last.ckpt")
    straight = _weights(root / "fsdp/checkpoints/last.ckpt")
    assert _max_difference(resumed, straight) == 0.0

    single = [sys.executable, "-m", f"{PACKAGE}.train", *flags, "--max-epochs", "4"]
    done = _run([*single, "--set", f"data.batch_size={2 * BATCH}", "--resume", "last"], project)
    assert "resumed from" in done.stdout and "at epoch 3" in done.stdout, done.stdout
    assert _loop_state(root / "resumed/checkpoints/last.ckpt")["epoch"] == 4


@pytest.mark.slow
def test_fsdp_activation_checkpointing_recomputes_exactly(fsdp):
    project, root = fsdp
    flags = _flags(root / "recompute", BATCH, "--set", "trainer.activation_checkpointing=true")
    _run([*_torchrun(2), "-m", f"{PACKAGE}.train", *flags], project)
    recomputed = _weights(root / "recompute/checkpoints/last.ckpt")
    stored = _weights(root / "fsdp/checkpoints/last.ckpt")
    assert _max_difference(recomputed, stored) == 0.0


def test_lightning_fsdp_on_cpu_is_a_spec_error_naming_the_plain_style(tmp_path):
    from click.testing import CliRunner

    from torch_scaffold.cli import main

    flags = ["--set", "trainer.strategy=fsdp", "--set", "trainer.accelerator=cpu"]
    args = ["new", "--style", "lightning", "-o", str(tmp_path / "p"), *flags]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "error: trainer.strategy: fsdp needs GPUs in the Lightning style" in result.output
    assert "--style pytorch" in result.output
    assert not (tmp_path / "p").exists()
