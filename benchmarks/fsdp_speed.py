"""FSDP against DDP per training step: the same generated model on 2 CPU processes (gloo).

    python benchmarks/fsdp_speed.py [--rounds 2]

One plain project generated with `trainer.strategy: fsdp` is trained by `torchrun
--nproc_per_node=2` once with `--strategy fsdp` and once with `--strategy ddp`. The time
per step is the wall-time difference between a 5-epoch and a 1-epoch run, divided by the
steps of the 4 extra epochs, so process start-up, the test stage and the first epoch's
warm-up cancel out (validation and checkpointing per epoch stay in, for both). Runs are
interleaved; the ratio is the median over rounds. run.py reports it as a context row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "tabular_classifier"
SAMPLES, BATCH = 8192, 64  # per process: 8192 * 0.7 / (2 * 64) = 45 steps per epoch
EXTRA_EPOCHS = 4  # the long run's epochs beyond the short one's: what is timed


def _generate(target: Path) -> Path:
    command = [sys.executable, "-m", "torch_scaffold", "new", "--style", "pytorch"]
    flags = ["-o", str(target), "--set", "trainer.strategy=fsdp"]
    subprocess.run([*command, *flags], check=True, capture_output=True)
    return target


def _run_seconds(project: Path, output_dir: Path, strategy: str, epochs: int) -> float:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    flags = ["--strategy", strategy, "--max-epochs", str(epochs), "--accelerator", "cpu"]
    flags += ["--output-dir", str(output_dir), "--set", f"data.num_samples={SAMPLES}"]
    flags += ["--set", f"data.batch_size={BATCH}", "--set", "trainer.early_stopping.patience=1000"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    started = time.perf_counter()
    subprocess.run(
        [*command, "-m", f"{PACKAGE}.train", *flags],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def steps_per_epoch() -> int:
    train = int(SAMPLES * 0.7)  # the default spec's splits: 0.15 validation, 0.15 test
    return -(-train // (2 * BATCH))


def measure(root: Path, rounds: int) -> tuple[float, dict[str, float]]:
    """(median FSDP/DDP per-step ratio, median ms per step for each strategy)."""
    project = _generate(root / "fsdp-project")
    per_step: dict[str, list[float]] = {"fsdp": [], "ddp": []}
    ratios = []
    for round_ in range(rounds):
        this_round = {}
        for strategy in ("fsdp", "ddp"):
            out = root / f"{strategy}-{round_}"
            short = _run_seconds(project, out / "short", strategy, 1)
            long = _run_seconds(project, out / "long", strategy, 1 + EXTRA_EPOCHS)
            this_round[strategy] = (long - short) / (EXTRA_EPOCHS * steps_per_epoch())
            per_step[strategy].append(this_round[strategy])
        ratios.append(this_round["fsdp"] / this_round["ddp"])
    medians = {name: 1000 * statistics.median(values) for name, values in per_step.items()}
    return statistics.median(ratios), medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fsdp-speed-") as tmp:
        ratio, ms = measure(Path(tmp), args.rounds)
    print(
        f"FSDP / DDP per step, 2 CPU processes: {ratio:.3f}x"
        f" ({ms['fsdp']:.2f} vs {ms['ddp']:.2f} ms/step, median of {args.rounds} rounds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
