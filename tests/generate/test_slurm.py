"""The generated scripts/slurm.sbatch under a real Slurm on this machine (tests/slurm/setup.sh
installs and starts one; .ci/run calls it when it can). Skipped, with the reason, without one.

Two ranks on one 2-CPU node: Lightning as two srun tasks that read SLURM's environment,
the plain style as one task running torchrun with two processes.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project

from .helpers import spec_with, write_files
from .test_distributed import PACKAGE, PARITY_CHANGES, _free_port

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SETUP = Path(__file__).resolve().parents[1] / "slurm" / "setup.sh"
DEFAULT_CONF = Path("/tmp/torch-scaffold-slurm/slurm.conf")  # where setup.sh writes it
# Two ranks, one CPU each: 192 training examples, 6 steps of 2 x 16 per epoch.
SPEC = spec_with(
    **{
        **PARITY_CHANGES,
        "data.num_samples": 256,
        "trainer.log_every_n_steps": 1,
        "trainer.devices": 2,
        "trainer.accelerator": "cpu",
    }
)
EPOCHS = 2
TIMEOUT = 300


def _slurm_conf() -> str:
    """SLURM_CONF of a running Slurm with an idle node, or skip with the reason."""
    if shutil.which("sbatch") is None:
        pytest.skip(f"Slurm is not installed (no sbatch on PATH); {SETUP} installs it (root)")
    conf = os.environ.get("SLURM_CONF") or str(DEFAULT_CONF)
    if not Path(conf).is_file():
        pytest.skip(f"Slurm is not configured here (no {conf}); run {SETUP}")
    env = dict(os.environ, SLURM_CONF=conf)
    try:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%T"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"Slurm does not answer (sinfo timed out, SLURM_CONF={conf}); run {SETUP}")
    if state.returncode != 0 or not {"idle", "mixed"} & set(state.stdout.split()):
        reason = (state.stderr or state.stdout).strip().splitlines()[-1:] or ["no node"]
        pytest.skip(f"Slurm is not running here (SLURM_CONF={conf}: {reason[0]}); run {SETUP}")
    return conf


def _env(tmp: Path, conf: str) -> dict[str, str]:
    """The job's environment (sbatch passes it on): this interpreter as `python` and
    `torchrun`, one thread per process, nothing of another launcher."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, module in (("python", ""), ("torchrun", "-m torch.distributed.run ")):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" {module}"$@"\n')
        tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PYTHON"))}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env.update(
        SLURM_CONF=conf,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        OMP_NUM_THREADS="1",
        RDZV_PORT=str(_free_port()),
    )
    return env


def _sbatch(project: Path, env: dict, cpus_per_task: int) -> str:
    """sbatch --wait the project's script; the job's output."""
    name = f"scaffold-test-{uuid.uuid4().hex[:8]}"
    command = [
        "sbatch", "--wait", f"--job-name={name}", f"--cpus-per-task={cpus_per_task}",
        "scripts/slurm.sbatch",
        "--max-epochs", str(EPOCHS), "--name", "slurm", "--set", "data.batch_size=16",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", name], env=env, timeout=30, check=False)
        raise
    outputs = sorted(project.glob("slurm-*.out"))
    output = "\n".join(path.read_text() for path in outputs)
    print(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}{output}")
    assert done.returncode == 0, f"{done.stderr}\n{output[-3000:]}"
    assert len(outputs) == 1
    return output


def _steps(project: Path) -> list[float]:
    with open(project / "outputs/slurm/logs/metrics.csv", newline="") as handle:
        rows = csv.DictReader(handle)
        return [float(row["train_loss_step"]) for row in rows if row.get("train_loss_step")]


@pytest.fixture(scope="module")
def conf():
    return _slurm_conf()


def test_lightning_sbatch_runs_two_tasks_from_slurms_environment(conf, tmp_path):
    project = write_files(render_project(SPEC, "lightning"), tmp_path / "project")
    output = _sbatch(project, _env(tmp_path, conf), cpus_per_task=1)
    # Two tasks srun started, joined by Lightning through SLURM_PROCID and SLURM_NTASKS.
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert len(_steps(project)) == EPOCHS * 6  # a global batch of 2 x 16: both ranks trained
    assert "last checkpoint: outputs/slurm/checkpoints/last.ckpt" in output


def test_plain_sbatch_runs_torchrun_under_srun(conf, tmp_path):
    project = write_files(render_project(SPEC, "pytorch"), tmp_path / "project")
    output = _sbatch(project, _env(tmp_path, conf), cpus_per_task=2)
    assert len(_steps(project)) == EPOCHS * 6  # torchrun's two processes: 2 x 16 per step
    assert output.count("last checkpoint: outputs/slurm/checkpoints/last.ckpt") == 1
    assert PACKAGE in (project / "outputs/slurm/run.json").read_text()
