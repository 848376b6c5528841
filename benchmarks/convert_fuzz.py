"""Differential fuzzing of `scaffold convert`: generated scripts, original against converted.

    python benchmarks/convert_fuzz.py --n 200 [--seed 0] [--no-save] [--show BUG|all]

Scripts seed..seed+n-1 come from tests/convert/fuzz/generate.py; each is converted and both
versions train a whole tiny run in this one process (tests/convert/fuzz/run.py), every
back-propagated loss and the final weights compared. Prints the count of each outcome and
every seed that found a bug, and writes the row for this --n/--seed into the "Converter
fuzzing" section of benchmarks/results.md. Exit 1 when any script found a bug.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported anywhere

import argparse
import collections
import datetime
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.md"
SECTION = "## Converter fuzzing"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.convert.fuzz.run import BUGS, OUTCOMES, check_seed  # noqa: E402


def save_row(n: int, seed: int, counts: collections.Counter, bug_seeds: list[int], seconds: float):
    """Write (or replace) the row for this n and seed in results.md's fuzzing section."""
    key = f"{n} scripts from seed {seed}"
    converted = n - counts["refused"] - counts["invalid"]
    row = (
        f"| {key} | " + " | ".join(str(counts[o]) for o in OUTCOMES)
        + f" | {converted / max(1, n - counts['invalid']):.0%} | {seconds:.0f} s"
        + f" | {', '.join(map(str, bug_seeds[:20])) or '-'} | {datetime.date.today()} |"
    )
    header = [
        SECTION,
        "",
        "Written by `python benchmarks/convert_fuzz.py --n N --seed S`: generated training scripts,"
        " each run original and converted (every loss and the final weights compared).",
        "",
        "| scripts | " + " | ".join(OUTCOMES) + " | converted | time | seeds with a bug | date |",
        "| --- " * (len(OUTCOMES) + 5) + "|",
    ]
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    before, _, section = text.partition(SECTION)
    section, found, after = section.partition("\n## ")  # the sections after this one stay
    others = [
        line for line in section.splitlines()
        if line.startswith("| ") and "scripts from seed" in line and not line.startswith(f"| {key} |")
    ]
    lines = header + sorted(others + [row], key=lambda r: r.split("|")[1])
    tail = "\n## " + after if found else ""
    RESULTS.write_text(
        before.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + tail, encoding="utf-8"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="how many scripts")
    parser.add_argument("--seed", type=int, default=0, help="the first script's seed")
    parser.add_argument("--no-save", action="store_true", help="do not write results.md")
    parser.add_argument("--show", default="bugs", help="print the verdict of: bugs | all | OUTCOME")
    args = parser.parse_args()

    counts: collections.Counter = collections.Counter()
    bug_seeds = []
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.n):
        verdict = check_seed(seed)
        counts[verdict.outcome] += 1
        if verdict.outcome in BUGS or verdict.outcome == "invalid":
            bug_seeds.append(seed)
        if args.show == "all" or verdict.outcome == args.show or (
            args.show == "bugs" and seed in bug_seeds
        ):
            print(f"seed {seed}: {verdict.outcome}: {verdict.detail}", flush=True)
    seconds = time.perf_counter() - started
    print(
        f"{args.n} scripts from seed {args.seed} in {seconds:.0f} s: "
        + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)
    )
    if not args.no_save:
        save_row(args.n, args.seed, counts, bug_seeds, seconds)
    return 1 if bug_seeds else 0


if __name__ == "__main__":
    raise SystemExit(main())
