"""Distributed data parallel in generated projects: 2 processes on CPU with gloo, both styles.

Plain style: launched by torchrun (`python -m torch.distributed.run`). Lightning style:
`--devices 2 --strategy ddp`, launched by Lightning itself. ddp_probe.py saves each rank's
final weights so that the ranks can be compared.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import spec_with, write_files

PROBE = Path(__file__).with_name("ddp_probe.py")
PACKAGE = "tabular_classifier"
BATCH = 32  # per process; the single-process reference uses 2 * BATCH
EPOCHS = 3
# No dropout (its masks would differ between one process with 2B and two with B each),
# no early stopping (every run trains the same number of epochs). 768 training examples:
# 12 steps of 2 x 32 per epoch, and every shard is the same size. SGD, not Adam: Adam
# divides by the gradient's running magnitude, so the last-bit rounding differences of a
# mean over 2B versus two means over B grow to ~lr on near-zero gradients.
PARITY_CHANGES = {
    "model.dropout": 0.0,
    "optimizer.name": "sgd",
    "optimizer.lr": 0.05,
    "data.num_samples": 1024,
    "data.val_split": 0.125,
    "data.test_split": 0.125,
    "trainer.early_stopping.enabled": False,
    "trainer.log_every_n_steps": 4,
}
SPEC = spec_with(**PARITY_CHANGES)
TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    env["MASTER_PORT"] = str(_free_port())
    env.pop("PYTHONPATH", None)  # the generated project needs torch only, not torch_scaffold
    return env


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert (
        done.returncode == 0
    ), f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _torchrun(nproc: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--master_port={_free_port()}",
    ]


def _flags(run: Path, batch: int, *extra: str, epochs: int = EPOCHS) -> list[str]:
    """Flags for a run in the folder `run` (named run.name, in its parent)."""
    return [
        "--accelerator",
        "cpu",
        "--max-epochs",
        str(epochs),
        "--output-dir",
        str(run.parent),
        "--name",
        run.name,
        "--set",
        f"data.batch_size={batch}",
        *extra,
    ]


def _epoch_losses(run: Path) -> list[float]:
    metrics = run / "logs" / "metrics.csv"
    with open(metrics, newline="") as handle:
        rows = csv.DictReader(handle)
        return [float(row["train_loss_epoch"]) for row in rows if row.get("train_loss_epoch")]


def _weights(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def _assert_identical(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"ranks disagree on {different}"


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[name] - b[name]).abs().max()) for name in a)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The plain project, trained by 2 processes with batch B (through the probe)."""
    root = tmp_path_factory.mktemp("ddp-plain")
    project = write_files(render_project(SPEC, "pytorch"), root / "project")
    command = [*_torchrun(2), str(PROBE), str(project), PACKAGE, str(root / "weights"), "--"]
    _run(command + _flags(root / "ddp", BATCH), project)
    return project, root


@pytest.mark.slow
def test_plain_ddp_ranks_end_identical_and_loss_goes_down(plain):
    _, root = plain
    rank0, rank1 = _weights(root / "weights/rank0.pt"), _weights(root / "weights/rank1.pt")
    _assert_identical(rank0, rank1)
    losses = _epoch_losses(root / "ddp")
    assert len(losses) == EPOCHS
    assert losses[-1] < losses[0] * 0.9, losses
    # Rank 0 alone wrote logs and checkpoints; the test stage ran on the best weights.
    assert not [p for p in (root / "ddp" / "logs").iterdir() if p.is_dir()]  # one version
    _assert_identical(_weights(root / "ddp/checkpoints/best.ckpt"), rank0)


@pytest.mark.slow
def test_plain_ddp_leaves_no_communication_thread_running(plain):
    """Regression: the process group outlived destroy_process_group, and its gloo threads
    aborted about 1 run in 8 at interpreter exit ("terminate called without an active
    exception"). Its threads must be gone by the time train.main returns."""
    _, root = plain
    _assert_no_threads_left(root / "weights")


def _assert_no_threads_left(weights: Path) -> None:
    for rank in (0, 1):
        left = (weights / f"rank{rank}.threads").read_text().split()
        assert not left, f"rank {rank}: native threads still running after train.main: {left}"


@pytest.mark.slow
def test_plain_two_processes_match_one_process_with_double_batch(plain):
    project, root = plain
    command = [sys.executable, "-m", f"{PACKAGE}.train"]
    _run(command + _flags(root / "single", 2 * BATCH), project)
    single = _weights(root / "single/checkpoints/last.ckpt")
    ddp = _weights(root / "ddp/checkpoints/last.ckpt")
    difference = _max_difference(single, ddp)
    print(f"2 x batch {BATCH} vs 1 x batch {2 * BATCH}: max weight difference {difference:.2e}")
    assert difference < 1e-5, difference
    for ddp_loss, single_loss in zip(_epoch_losses(root / "ddp"), _epoch_losses(root / "single")):
        assert ddp_loss == pytest.approx(single_loss, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_plain_ddp_resume_continues_exactly(plain):
    """2 epochs, then --resume last to 3 epochs: the same weights as 3 epochs straight."""
    project, root = plain
    command = [*_torchrun(2), "-m", f"{PACKAGE}.train"]
    flags = _flags(root / "resumed", BATCH)
    first = [*flags, "--max-epochs", "2"]  # the later flag wins
    _run(command + first, project)
    done = _run(command + flags + ["--resume", "last"], project)
    assert done.stdout.count("resumed from") == 1, done.stdout  # printed by rank 0 only
    resumed = _weights(root / "resumed/checkpoints/last.ckpt")
    straight = _weights(root / "ddp/checkpoints/last.ckpt")
    assert _max_difference(resumed, straight) == 0.0


@pytest.mark.slow
def test_lightning_ddp_ranks_end_identical_and_loss_goes_down(tmp_path, plain):
    project = write_files(render_project(SPEC, "lightning"), tmp_path / "project")
    flags = _flags(tmp_path / "ddp", BATCH, "--devices", "2", "--strategy", "ddp")
    command = [sys.executable, str(PROBE), str(project), PACKAGE, str(tmp_path / "weights"), "--"]
    done = _run(command + flags, project)
    # Every epoch-level value is reduced over ranks, so Lightning has nothing to warn about.
    assert "sync_dist=True" not in done.stderr
    rank0 = _weights(tmp_path / "weights/rank0.pt")
    _assert_identical(rank0, _weights(tmp_path / "weights/rank1.pt"))
    _assert_no_threads_left(tmp_path / "weights")
    losses = _epoch_losses(tmp_path / "ddp")
    assert len(losses) == EPOCHS
    assert losses[-1] < losses[0] * 0.9, losses
    assert (tmp_path / "ddp/checkpoints/last.ckpt").is_file()
    # Lightning shards with the DistributedSampler it builds itself for validation and
    # testing, and the DataModule's for training: the same shards as the plain project's.
    plain_losses = _epoch_losses(plain[1] / "ddp")
    assert losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-6), (losses, plain_losses)
    network = {
        name[len("model.") :]: value for name, value in rank0.items() if name.startswith("model.")
    }
    assert _max_difference(network, _weights(plain[1] / "weights/rank0.pt")) < 1e-5


def test_probe_sees_a_live_groups_threads_and_not_a_destroyed_ones(tmp_path, monkeypatch):
    """The thread check itself: gloo's threads are reported while their group lives, and
    none once it is destroyed (joined threads that linger in /proc for a moment are waited
    for, not reported)."""
    import torch.distributed as dist

    from . import ddp_probe

    monkeypatch.setattr(ddp_probe, "SETTLE_SECONDS", 0.5)
    before = ddp_probe.native_threads()
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert any("gloo" in name for name in ddp_probe.threads_still_running(before))
    finally:
        dist.destroy_process_group()
    assert ddp_probe.threads_still_running(before) == []
