"""Style parity on whatever device a run picks: the per-step losses of two generated projects.

    python benchmarks/gpu_parity.py PLAIN_DIR LIGHTNING_DIR --steps 60 -- --accelerator cuda ...

Both projects (same spec, the two styles) are trained in this process, one after the other,
with Tensor.backward wrapped to record every scalar loss (tests/generate/inprocess.py, as
../shared/tools/losstrace.py does); training stops after --steps losses. Prints the
largest absolute difference and exits 1 when it is above --atol. Needs only torch and pytorch-lightning, not torch_scaffold, so it
runs on a GPU machine where the projects were generated elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The in-process runner of the test suite: needs torch only, not torch_scaffold.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "generate"))
from inprocess import train_losses


def _package(project: Path) -> str:
    """The generated package: the one folder holding train.py."""
    (train,) = project.glob("*/train.py")
    return train.parent.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain", type=Path)
    parser.add_argument("lightning", type=Path)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--atol", type=float, default=1e-5)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    train_args = argv[split + 1 :]  # after --: flags for both projects' train.py
    traces = [
        train_losses(project.resolve(), _package(project), train_args, args.steps)
        for project in (args.plain, args.lightning)
    ]
    if len(traces[0]) != len(traces[1]) or len(traces[0]) < args.steps:
        print(f"parity: step counts differ: {len(traces[0])} vs {len(traces[1])}")
        return 1
    worst = max(abs(a - b) for a, b in zip(*traces))
    verdict = "ok" if worst <= args.atol else "DIFFERENT"
    print(f"parity: {args.steps} steps, max abs diff {worst:.3g} (atol {args.atol:g}): {verdict}")
    print(f"first losses: plain {traces[0][:3]} lightning {traces[1][:3]}")
    return 0 if worst <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
