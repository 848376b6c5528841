"""Exit codes of repeated 2-process DDP runs of a generated project, on CPU (gloo).

    python benchmarks/ddp_exit.py                      # 100 plain runs, 2 busy cores of load
    python benchmarks/ddp_exit.py --runs 30 --load 0   # quieter machine
    python benchmarks/ddp_exit.py --style lightning    # Lightning's own DDP launcher

Each run is `torchrun --standalone --nproc_per_node=2 -m <package>.train --max-epochs 1`
(Lightning: `--devices 2 --strategy ddp`) in a fresh output folder. A run passes when the
launcher exits 0. `--load N` keeps N busy-looping processes running meanwhile: the abort at
exit that this guards against ("terminate called without an active exception", about 1 run
in 8) showed only when the ranks had to wait for a core. Prints one line per failure and a
summary `N runs, K failed`; exits 1 when any run failed. Not part of the test suite (100
runs take about 15 minutes on 2 cores); tests/generate/test_distributed.py keeps the cheap,
deterministic check that no communication thread outlives a run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "tabular_classifier"  # the default spec's package


def busy_loop() -> None:
    while True:
        pass


def generate(style: str, target: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "torch_scaffold", "new", "--style", style, "-o", str(target)],
        check=True,
        capture_output=True,
    )
    return target


def command(style: str, output_dir: Path) -> list[str]:
    flags = ["--max-epochs", "1", "--accelerator", "cpu", "--output-dir", str(output_dir)]
    if style == "lightning":  # Lightning starts the second process itself
        return [sys.executable, "-m", f"{PACKAGE}.train", *flags, "--devices=2", "--strategy=ddp"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*launcher, "--nproc_per_node=2", "-m", f"{PACKAGE}.train", *flags]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--style", choices=("pytorch", "lightning"), default="pytorch")
    parser.add_argument("--load", type=int, default=2, help="busy processes meanwhile")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    args = parser.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS="1")
    load = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(args.load)]
    for process in load:
        process.start()
    failures = 0
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="ddp-exit-") as tmp:
            project = generate(args.style, Path(tmp) / "project")
            for run in range(1, args.runs + 1):
                output_dir = Path(tmp) / f"run{run}"
                try:
                    done = subprocess.run(
                        command(args.style, output_dir),
                        cwd=project,
                        check=False,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                    )
                    code, stderr = done.returncode, done.stderr
                except subprocess.TimeoutExpired:
                    code, stderr = "timeout", ""
                if code != 0:
                    failures += 1
                    aborts = stderr.count("terminate called")
                    print(f"run {run}: exit {code}, {aborts} 'terminate called' lines", flush=True)
    finally:
        for process in load:
            process.terminate()
    minutes = (time.perf_counter() - started) / 60
    print(
        f"{args.style}: {args.runs} runs, {failures} failed"
        f" ({args.load} busy processes alongside, {minutes:.1f} min)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
