"""Two nodes on this machine, both styles: the README's two-node torchrun line, run as written
(its address, port and device count filled in) by two agents of one CPU process each (gloo).

node_harness/sitecustomize.py, on the launches' PYTHONPATH, records which rank writes which
file of the run, and holds rank 0 still before a checkpoint write when a test kills a node.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import spec_with, write_files
from .test_distributed import PACKAGE, PARITY_CHANGES, _free_port
from .test_distributed import _flags as distributed_flags

pytestmark = [pytest.mark.slow, pytest.mark.multinode]

HARNESS = Path(__file__).with_name("node_harness")
BATCH = 16  # per process; the one-process reference uses 2 * BATCH
EPOCHS = 3
# 192 training examples: 6 steps of 2 x 16 per epoch; every step's loss is logged.
SPEC = spec_with(**{**PARITY_CHANGES, "data.num_samples": 256, "trainer.log_every_n_steps": 1})
STEPS = EPOCHS * 6
TIMEOUT = 300
STALL_SECONDS = 5.0  # rank 0 holds still this long; the test kills the other node meanwhile


def readme_two_node_command(project: Path, host: str, port: int, nproc: int) -> list[str]:
    """The README's two-node torchrun command, with its address, port and device count."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    (block,) = [block for block in blocks if "--nnodes=2" in block]
    line = block.replace("\\\n", " ")
    for old, new in (
        ("HEAD:29500", f"{host}:{port}"),
        ("--nproc-per-node=8", f"--nproc-per-node={nproc}"),
        ("--devices 8", f"--devices {nproc}"),
    ):
        assert line.count(old) == 1, f"README's two-node line changed: {block}"
        line = line.replace(old, new)
    return shlex.split(line)


def _env(tmp: Path, output: Path, stall: float = 0.0) -> dict[str, str]:
    bin_dir = tmp / "bin"  # `torchrun` for this interpreter, whichever venv it is in
    if not (bin_dir / "torchrun").exists():
        bin_dir.mkdir(parents=True, exist_ok=True)
        shim = bin_dir / "torchrun"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m torch.distributed.run "$@"\n')
        shim.chmod(0o755)
    log = tmp / "writes"
    log.mkdir(exist_ok=True)
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(HARNESS),  # the project itself needs torch only, not torch_scaffold
        NODE_HARNESS_WATCH=str(output),
        NODE_HARNESS_LOG=str(log),
        NODE_HARNESS_STALL=str(stall),
    )


def _flags(run: Path, batch: int, *extra: str) -> list[str]:
    return distributed_flags(run, batch, *extra, epochs=EPOCHS)


def _start_nodes(project: Path, env: dict, flags: list[str], logs: Path) -> list:
    command = readme_two_node_command(project, "127.0.0.1", _free_port(), 1) + flags
    nodes = []
    for node in (0, 1):
        out = open(logs / f"node{node}.log", "w")  # noqa: SIM115 (closed by the process)
        nodes.append(
            subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        )
        out.close()
    return nodes


def _wait(nodes: list, logs: Path) -> list[int]:
    try:
        return [node.wait(timeout=TIMEOUT) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                _kill_tree(node.pid)


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))


def _run_two_nodes(project: Path, run: Path, env: dict, *extra: str) -> None:
    logs = run.parent / f"{run.name}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    codes = _wait(_start_nodes(project, env, _flags(run, BATCH, *extra), logs), logs)
    assert codes == [0, 0], _logs(logs)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill_tree(pid: int) -> None:
    """SIGKILL an agent and every process under it: the node is gone. (torchrun starts its
    workers in their own session, so killing the agent's process group would spare them.)"""
    stack, tree = [pid], []
    while stack:
        tree.append(stack.pop())
        stack.extend(_children(tree[-1]))
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _metrics(run: Path, column: str) -> list[float]:
    with open(run / "logs" / "metrics.csv", newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]


def _weights(checkpoint: Path) -> dict:
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state["model"] if "model" in state else state["state_dict"]


def _writes(tmp: Path, run: Path) -> list[tuple[str, str, str]]:
    """(rank, event, path) of every write into `run` that the launches' processes made."""
    records = []
    for log in (tmp / "writes").glob("writes-*.txt"):
        for line in log.read_text().splitlines():
            rank, event, path = line.split(" ", 2)
            if path.startswith(f"{run}{os.sep}"):
                records.append((rank, event, path))
    return records


@pytest.fixture(scope="module", params=["pytorch", "lightning"])
def two_nodes(request, tmp_path_factory):
    """A project of each style, trained by two nodes of one process each."""
    style = request.param
    tmp = tmp_path_factory.mktemp(f"two-nodes-{style}")
    project = write_files(render_project(SPEC, style), tmp / "project")
    output = tmp / "outputs"
    _run_two_nodes(project, output / "two", _env(tmp, output))
    return style, project, tmp, output


def test_two_nodes_train(two_nodes):
    _, _, _, output = two_nodes
    epochs = _metrics(output / "two", "train_loss_epoch")
    assert len(epochs) == EPOCHS and epochs[-1] < epochs[0], epochs
    assert (output / "two/checkpoints/last.ckpt").is_file()


def test_two_nodes_match_one_process_with_the_same_global_batch(two_nodes):
    style, project, tmp, output = two_nodes
    command = [sys.executable, "-m", f"{PACKAGE}.train", *_flags(output / "one", 2 * BATCH)]
    done = subprocess.run(
        command,
        cwd=project,
        env=_env(tmp, output),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    two, one = _metrics(output / "two", "train_loss_step"), _metrics(
        output / "one", "train_loss_step"
    )
    assert len(two) == len(one) == STEPS
    print(f"{style}: 2 nodes x batch {BATCH} vs 1 process x batch {2 * BATCH}, per-step loss:")
    for step, (a, b) in enumerate(zip(two, one)):
        print(f"  step {step:2d}: two nodes {a:.7f}  one process {b:.7f}  diff {abs(a - b):.1e}")
    assert two == pytest.approx(one, rel=1e-5, abs=1e-6)


def test_two_nodes_write_checkpoints_once_from_rank_0(two_nodes):
    _, _, tmp, output = two_nodes
    writes = _writes(tmp, output / "two")
    assert writes, "the harness recorded no write"
    assert {rank for rank, _, _ in writes} == {"0"}, sorted(set(writes))
    # One last.ckpt per epoch: written whole (a temporary, then renamed) or in place, once.
    last = [p for _, event, p in writes if Path(p).name == "last.ckpt"]
    assert len(last) == EPOCHS, writes


def test_two_nodes_resume_exactly_after_a_node_is_killed(two_nodes):
    style, project, tmp, output = two_nodes
    run = output / "killed"
    logs = tmp / "killed-logs"
    logs.mkdir()
    nodes = _start_nodes(project, _env(tmp, output, STALL_SECONDS), _flags(run, BATCH), logs)
    stalled = tmp / "writes" / "stalled"  # rank 0 waits at its next checkpoint write
    deadline = time.monotonic() + TIMEOUT
    while not stalled.exists() and time.monotonic() < deadline and nodes[0].poll() is None:
        time.sleep(0.05)
    assert stalled.exists(), _logs(logs)
    stalled.unlink()
    _kill_tree(nodes[1].pid)
    codes = _wait(nodes, logs)
    assert codes[0] != 0, f"the job went on without node 1\n{_logs(logs)}"
    assert len(_metrics(run, "train_loss_epoch")) < EPOCHS

    _run_two_nodes(project, run, _env(tmp, output), "--resume", "last")
    resumed, straight = _weights(run / "checkpoints/last.ckpt"), _weights(
        output / "two/checkpoints/last.ckpt"
    )
    import torch

    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in resumed), style
