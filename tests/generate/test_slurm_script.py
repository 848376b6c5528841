"""scripts/slurm.sbatch without Slurm: its #SBATCH header for several node and device counts,
and the launch command it builds, run with stand-ins for srun and scontrol that print their
arguments. test_slurm.py runs it under a real Slurm."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from torch_scaffold.generate import render_project

from .helpers import spec_with

SHAPES = [(1, 1, "auto"), (2, 4, "cuda"), (4, 8, "auto"), (3, 2, "cpu")]


def _script(style: str, nodes: int, devices: int, accelerator: str) -> str:
    spec = spec_with(
        **{
            "trainer.num_nodes": nodes,
            "trainer.devices": devices,
            "trainer.accelerator": accelerator,
        }
    )
    return render_project(spec, style, format_code=False)["scripts/slurm.sbatch"]


def _directives(script: str) -> dict[str, str]:
    """The #SBATCH options sbatch reads: those before the first command."""
    options = {}
    for line in script.splitlines()[1:]:
        if line.startswith("#SBATCH"):
            name, _, value = line.split(maxsplit=1)[1].partition("=")
            options[name] = value
        elif line.strip() and not line.startswith("#"):
            break
    return options


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
@pytest.mark.parametrize("nodes,devices,accelerator", SHAPES)
def test_sbatch_header(style, nodes, devices, accelerator):
    script = _script(style, nodes, devices, accelerator)
    assert script.startswith("#!/bin/bash\n")  # sbatch refuses a script without it
    options = _directives(script)
    assert options["--nodes"] == str(nodes)
    assert options["--ntasks-per-node"] == str(devices if style == "lightning" else 1)
    # A GPU request on a cluster without GPUs is refused ("Invalid generic resource").
    assert options.get("--gpus-per-node") == (None if accelerator == "cpu" else str(devices))
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def _launch(tmp_path, script: str, env: dict[str, str]) -> list[str]:
    """Run the script with srun and scontrol stand-ins; the srun command line it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    (bin_dir / "scontrol").write_text('#!/bin/sh\nprintf "node-a\\nnode-b\\n"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "slurm.sbatch").write_text(script)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SRUN_ARGS": str(tmp_path / "srun.args"),
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_NODELIST": "node-[a-b]",
        **env,
    }
    command = ["bash", str(tmp_path / "slurm.sbatch"), "--max-epochs", "5"]
    subprocess.run(command, env=env, check=True, timeout=30)
    return (tmp_path / "srun.args").read_text().splitlines()


def test_plain_sbatch_starts_one_torchrun_per_node_meeting_at_the_first(tmp_path):
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_GPUS_ON_NODE": "4", "RDZV_PORT": "29611"}
    args = _launch(tmp_path, _script("pytorch", 2, 4, "cuda"), env)
    assert shlex.join(args) == (
        "torchrun --nnodes=2 --nproc-per-node=4 --rdzv-id=77 --rdzv-backend=c10d"
        " --rdzv-endpoint=node-a:29611 -m tabular_classifier.train --devices 4"
        " --num-nodes 2 --max-epochs 5"
    )


def test_plain_sbatch_on_cpu_starts_the_configured_processes(tmp_path):
    args = _launch(tmp_path, _script("pytorch", 1, 2, "cpu"), {"SLURM_JOB_NUM_NODES": "1"})
    assert "--nproc-per-node=2" in args and "--rdzv-endpoint=node-a:29500" in args


def test_lightning_sbatch_runs_one_rank_per_task(tmp_path):
    env = {"SLURM_JOB_NUM_NODES": "3", "SLURM_NTASKS_PER_NODE": "2", "SLURM_GPUS_ON_NODE": "8"}
    args = _launch(tmp_path, _script("lightning", 3, 2, "cpu"), env)
    assert shlex.join(args) == (
        "python -m tabular_classifier.train --devices 2 --num-nodes 3 --max-epochs 5"
    )
