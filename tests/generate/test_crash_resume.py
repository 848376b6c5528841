"""Crash-safe training in generated projects: kill -9 during training and during checkpoint
writes, resume with `--resume last`, and end with exactly the weights of an uninterrupted run.

The kills happen in real processes (kill_harness.py forks one per run and SIGKILLs it). Kill
points: before the backward of a step in the middle of an epoch, at an epoch boundary (before
the first step of the next epoch), after a chunk of a checkpoint write, just before the rename
that publishes last.ckpt, and at random times. A summary line with the counts is printed
(`pytest -s` shows it).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import spec_with, write_files

HARNESS = Path(__file__).with_name("kill_harness.py")
EPOCHS = 4
SPEC = spec_with(
    **{
        "name": "crash-test",
        "model.hidden_sizes": (32,),
        "model.dropout": 0.2,  # dropout draws from the global RNG: resumes must restore it
        "data.num_samples": 120,
        "data.batch_size": 16,
        "data.val_split": 0.2,
        "data.test_split": 0.0,
        "trainer.max_epochs": EPOCHS,
        "trainer.early_stopping.enabled": False,
        "logging.csv": False,
        "logging.tensorboard": False,
    }
)
BATCHES = math.ceil((SPEC.data.num_samples - int(SPEC.data.num_samples * 0.2)) / 16)  # per epoch
CHUNKS = 8


def _plan(style: str, root: Path, seed: int, counts: dict[str, int]) -> dict:
    """Kill points drawn at random (seeded, so a failure can be replayed)."""
    rng = random.Random(seed)
    saves_per_epoch = 2  # best.ckpt (val_loss improves on this data) and last.ckpt
    steps = EPOCHS * BATCHES
    trials = []
    for _ in range(counts["mid_epoch"]):
        step = rng.choice([s for s in range(2, steps + 1) if (s - 1) % BATCHES])
        trials.append({"kind": "step", "step": step})
    for _ in range(counts["epoch_boundary"]):
        trials.append({"kind": "step", "step": rng.randrange(1, EPOCHS) * BATCHES + 1})
    for _ in range(counts["mid_write"]):
        save = rng.randrange(1, EPOCHS * saves_per_epoch + 1)
        trials.append({"kind": "save", "save": save, "chunk": rng.randrange(CHUNKS)})
    for _ in range(counts["before_rename"]):
        trials.append({"kind": "before_replace", "save": rng.randrange(1, EPOCHS * 2)})
    for _ in range(counts["random_time"]):
        trials.append({"kind": "random", "fraction": rng.uniform(0.05, 1.0)})
    return {
        "root": str(root),
        "argv": ["--accelerator", "cpu"],
        "weights_key": "model" if style == "pytorch" else "state_dict",
        "chunks": CHUNKS,
        "chunk_delay": 0.01,
        "expected_saves": EPOCHS * saves_per_epoch,
        "trials": trials,
    }


def _run_harness(style: str, tmp_path: Path, counts: dict[str, int]) -> dict:
    context = build_context(SPEC, style)
    project = write_files(render_project(SPEC, style), tmp_path / "project")
    root = tmp_path / "runs"
    root.mkdir()
    seed = int(os.environ.get("SCAFFOLD_KILL_SEED", "5"))
    plan = _plan(style, root, seed, counts)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # the generated project runs without torch_scaffold
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(project),
            context["package_name"],
            str(tmp_path / "plan.json"),
            str(tmp_path / "result.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads((tmp_path / "result.json").read_text())


def _check(style: str, results: dict) -> None:
    trials = results["trials"]
    killed = [t for t in trials if t["killed"]]
    in_save = [t for t in killed if t["killed_in_save"]]
    for trial in trials:
        label = json.dumps({k: v for k, v in trial.items() if k != "log_tail"})
        if trial["kind"] != "random":  # a planned kill point is always reached
            assert trial["killed"] and trial["stopped_at"], label
        assert trial["last_loads"] in (True, None), label  # never a torn last.ckpt
        if trial["last_loads"] is None:
            assert trial["resume_last_without_checkpoint_exit"] == 2, label
        assert trial["resume_exit"] == 0, label + trial.get("log_tail", "")
        assert trial["equal"], label  # torch.equal to the uninterrupted run
        assert trial["leftovers_after_resume"] == [], label
    print(
        f"\n[crash/resume {style}] {len(trials)} trials, {len(killed)} kill -9"
        f" ({len(in_save)} during a checkpoint write), {sum(t['equal'] for t in trials)}"
        f" resumed to weights torch.equal to the uninterrupted run"
    )
    assert len(in_save) >= 1


@pytest.mark.slow
def test_plain_style_survives_kill_9_anywhere(tmp_path):
    counts = {"mid_epoch": 5, "epoch_boundary": 3, "mid_write": 8, "before_rename": 2}
    results = _run_harness("pytorch", tmp_path, {**counts, "random_time": 6})
    _check("pytorch", results)


@pytest.mark.slow
def test_lightning_style_survives_kill_9_anywhere(tmp_path):
    counts = {"mid_epoch": 2, "epoch_boundary": 1, "mid_write": 4, "before_rename": 1}
    results = _run_harness("lightning", tmp_path, {**counts, "random_time": 3})
    _check("lightning", results)
