"""Print the benchmark table: ratios and wall times, all measured in this one run.

    python benchmarks/run.py [--rounds 5] [--epochs 3] [--samples 8192] [--no-save]
    python benchmarks/run.py --convert-only     # the converter's rows alone (about 1 minute)

CPU, one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)). What each row means and
its target: benchmarks/README.md. The table is saved to benchmarks/results.md; a row more
than 10% worse than the saved table is flagged as a regression (exit code 1).
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported anywhere

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.md"
REGRESSION = 1.10  # a row more than 10% worse than the previous table is a bug
LIGHTNING_PARITY_ALLOWANCE = 0.05  # s/epoch: Lightning's own parity test vs plain PyTorch (RNN)

sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))


@dataclass
class Row:
    key: str  # stable name, used to compare with the previous table
    value: float  # lower is better for every row
    unit: str
    target: str
    ok: bool
    note: str = ""
    # a rise against the previous table is a regression; not for a ratio of two timings,
    # which rises when its smaller timing improves (its target is the check)
    compared: bool = True


def _timed(command: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of a command in a fresh interpreter.

    CPU time (user + system of the child) barely changes when other processes share the
    cores, so it is shown next to the wall time as a check on a busy machine.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), **(extra_env or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cli_row(
    key: str, commands: list[list[str]], limit: float, envs: list[dict[str, str]] | None = None
) -> Row:
    runs = [_timed(command, env) for command, env in zip(commands, envs or [{}] * len(commands))]
    wall = statistics.median(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    note = f"CPU {cpu:.3f} s; median of {len(runs)}"
    return Row(key, wall, "s", f"< {limit} s", wall < limit, note)


def cli_rows(root: Path, repeat: int) -> list[Row]:
    scaffold = [sys.executable, "-m", "torch_scaffold"]
    new = [
        [*scaffold, "new", "--style", "lightning", "-o", str(root / f"new-{i}")]
        for i in range(repeat)
    ]
    # a first run on a machine: black and Jinja's compiler with an empty cache each time
    cold = [
        [*scaffold, "new", "--style", "lightning", "-o", str(root / f"cold-{i}")]
        for i in range(repeat)
    ]
    cold_envs = [{"TORCH_SCAFFOLD_CACHE_DIR": str(root / f"cache-{i}")} for i in range(repeat)]
    # the projects `new` just wrote, updated with a changed optimizer (a real merge)
    update = [
        [*scaffold, "update", str(root / f"new-{i}"), "--set", "optimizer.name=sgd"]
        for i in range(repeat)
    ]
    _timed(
        [*scaffold, "new", "--style", "lightning", "-o", str(root / "warm-up")]
    )  # fills the cache
    return [
        _cli_row("scaffold --help", [[*scaffold, "--help"]] * repeat, 0.3),
        _cli_row("scaffold new (default, lightning)", new, 0.4),
        _cli_row("scaffold new, empty cache (first run)", cold, 2.0, cold_envs),
        _cli_row("scaffold update (default project, --set optimizer.name=sgd)", update, 2.0),
    ]


def _context_row(key: str, ratio: float, note: str) -> Row:
    """A ratio with no target of its own: it explains or splits a target row."""
    return Row(key, ratio, "x", "", True, note)


def training_rows(root: Path, samples: int, rounds: int, epochs: int) -> list[Row]:
    from training_speed import measure, paired_ratio

    t = measure(root, samples, rounds, epochs)
    steps = t["steps_per_epoch"]
    plain = paired_ratio(t, "plain_step", "bare_step")
    plain_no_tensorboard = paired_ratio(t, "plain_no_tensorboard_step", "bare_step")
    generated_code = paired_ratio(t, "lightning_generated_bare_step", "lightning_bare_step")
    lightning = paired_ratio(t, "lightning_step", "lightning_bare_step")
    lightning_own = paired_ratio(t, "lightning_bare_step", "bare_step")
    lightning_module = paired_ratio(t, "lightning_step", "lightning_same_trainer_step")
    lightning_trainer = paired_ratio(t, "lightning_same_trainer_step", "lightning_bare_step")
    per_epoch = paired_ratio(t, "lightning_epoch", "plain_epoch")
    control = paired_ratio(t, "lightning_control_step", "lightning_bare_step")
    gap = t["lightning_epoch"] - t["plain_epoch"]
    return [
        Row(
            "plain loop / bare hand loop, per step",
            plain,
            "x",
            "<= 1.05",
            plain <= 1.05,
            f"{1e3 * t['plain_step']:.3f} vs {1e3 * t['bare_step']:.3f} ms/step (CPU),"
            f" {steps} steps/epoch",
        ),
        _context_row(
            "plain loop without TensorBoard / bare hand loop, per step",
            plain_no_tensorboard,
            "context: the same loop with its TensorBoard writer detached; the difference from"
            " the row above is TensorBoard's event writer (pure-Python CRC32C per event)",
        ),
        Row(
            "generated LightningModule + DataModule / minimal module, both barebones, per step",
            generated_code,
            "x",
            "<= 1.05",
            generated_code <= 1.05,
            "what the generated code adds to Lightning: both under Trainer(barebones=True),"
            f" {1e3 * t['lightning_generated_bare_step']:.3f} vs"
            f" {1e3 * t['lightning_bare_step']:.3f} ms/step (CPU)",
        ),
        _context_row(
            "generated Lightning / minimal barebones Lightning, per step",
            lightning,
            "context: the generated project with its own full Trainer against the minimal"
            f" barebones one, {1e3 * t['lightning_step']:.3f} vs"
            f" {1e3 * t['lightning_bare_step']:.3f} ms/step (CPU); the next two rows split it",
        ),
        _context_row(
            "generated Lightning / minimal module under the generated Trainer, per step",
            lightning_module,
            "context: what the generated LightningModule and DataModule add under the same"
            " Trainer, callbacks and loggers, their step-loss logging at the interval included"
            " (the minimal module logs nothing while training;"
            f" {1e3 * t['lightning_same_trainer_step']:.3f} ms/step)",
        ),
        _context_row(
            "minimal module: generated Trainer / barebones Trainer, per step",
            lightning_trainer,
            "context: Lightning's full Trainer (progress bar, checkpoint and early-stopping"
            " callbacks, loggers) against barebones",
        ),
        _context_row(
            "minimal barebones Lightning / bare hand loop, per step",
            lightning_own,
            "context: Lightning's own per-step cost, outside the generated code",
        ),
        _context_row(
            "control: minimal barebones Lightning / the same fit again, per step",
            control,
            "noise floor of this run: identical code, so any distance from 1.000 is the"
            " machine, not the code; read the other ratios with this margin",
        ),
        _context_row(
            "generated Lightning / generated plain, per epoch",
            per_epoch,
            f"{t['lightning_epoch']:.3f} vs {t['plain_epoch']:.3f} s/epoch (CPU): gap {gap:+.3f} s"
            f" per epoch, reported next to Lightning's own parity allowance of"
            f" {LIGHTNING_PARITY_ALLOWANCE} s/epoch (their RNN model)",
        ),
    ]


CONVERT_SIZES = (1000, 5000, 30000)
CONVERT_MS_PER_LINE = 0.3  # issue 12
CONVERT_MEMORY_RATIO = 10.0  # peak memory over the parse tree's own


def convert_rows() -> list[Row]:
    """ms per line at three sizes, their growth, and peak memory over the parse tree."""
    from convert_speed import memory, speed

    measured = speed(list(CONVERT_SIZES), repeat=3)
    rows = []
    for target, (lines, cpu, wall) in zip(CONVERT_SIZES, measured):
        ms = 1000 * cpu / lines
        last = target == CONVERT_SIZES[-1]
        rows.append(
            Row(
                f"convert ms per line, {target:,} lines",
                ms,
                "ms",
                f"<= {CONVERT_MS_PER_LINE}" if last else "",
                ms <= CONVERT_MS_PER_LINE,
                f"CPU {cpu:.2f} s, wall {wall:.2f} s for {lines} lines"
                f" ({'best of 3' if target <= 10_000 else 'one run'})",
            )
        )
    (small, small_cpu, _), (big, big_cpu, _) = measured[0], measured[-1]
    growth = (big_cpu / big) / (small_cpu / small)
    rows.append(
        Row(
            f"convert time per line, {CONVERT_SIZES[-1]:,} / {CONVERT_SIZES[0]:,} lines",
            growth,
            "x",
            "<= 1.5 (linear growth)",
            growth <= 1.5,
            "1 is linear; below 1, the fixed costs (black on the new code) spread over more"
            " lines. The rows above are milliseconds: a faster small run raises this ratio",
            compared=False,
        )
    )
    m = memory(CONVERT_SIZES[-1])
    tree = m["tree_bytes"]
    rss, traced = m["rss_bytes"] / tree, m["traced_peak_bytes"] / tree
    rows.append(
        Row(
            f"convert peak memory / parse tree, {CONVERT_SIZES[-1]:,} lines",
            rss,
            "x",
            f"< {CONVERT_MEMORY_RATIO:g}",
            rss < CONVERT_MEMORY_RATIO,
            f"peak RSS a conversion adds, {m['rss_bytes'] / 2**20:.0f} MiB (libcst's native"
            f" parser included), over the parsed module's Python objects, {tree / 2**20:.1f} MiB"
            " (tracemalloc); fresh interpreter",
        )
    )
    rows.append(
        _context_row(
            f"convert peak Python allocations / parse tree, {CONVERT_SIZES[-1]:,} lines",
            traced,
            f"context: tracemalloc peak of the conversion, {m['traced_peak_bytes'] / 2**20:.0f}"
            " MiB, over the same tree",
        )
    )
    return rows


def _is_convert_row(key: str) -> bool:
    return key.startswith(("convert ", "scaffold convert,"))


def save_convert_rows(table: str) -> None:
    """Put the convert rows of `table` into results.md in place of its old ones."""
    kept = []
    if RESULTS.is_file():
        for line in RESULTS.read_text(encoding="utf-8").splitlines():
            key = line.strip().strip("|").split("|")[0].strip()
            if not (line.startswith("|") and _is_convert_row(key)):
                kept.append(line)
    new = table.splitlines()[2:]
    RESULTS.write_text("\n".join(kept + new) + "\n", encoding="utf-8")


def _other_sections() -> str:
    """The sections other tools write below the table (## headings), kept as they are."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    start = text.find("\n## ")
    return "" if start < 0 else text[start:]


def fsdp_row(root: Path) -> Row:
    import fsdp_speed

    ratio, ms = fsdp_speed.measure(root, rounds=2)
    note = f"context: {ms['fsdp']:.2f} vs {ms['ddp']:.2f} ms/step, 2 gloo processes (fsdp_speed.py)"
    return _context_row("FSDP / DDP per step, same model, 2 CPU processes", ratio, note)


def previous_values(path: Path) -> dict[str, float]:
    """{row key: value} from a saved table (the first two columns of each row)."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2:
            try:
                values[cells[0]] = float(cells[1].split()[0])
            except (ValueError, IndexError):
                continue
    return values


def render(rows: list[Row], previous: dict[str, float]) -> tuple[str, list[str]]:
    lines = [
        "| benchmark | value | target | meets target | previous | detail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    regressions = []
    for row in rows:
        before = previous.get(row.key)
        change = ""
        if before:
            change = f"{before:.3f} ({row.value / before - 1:+.0%})"
            if row.compared and row.value > before * REGRESSION:
                regressions.append(f"{row.key}: {before:.3f} -> {row.value:.3f}")
                change += " REGRESSION"
        verdict = ("yes" if row.ok else "NO") if row.target else ""
        lines.append(
            f"| {row.key} | {row.value:.3f} {row.unit} | {row.target} | {verdict} | {change} |"
            f" {row.note} |"
        )
    return "\n".join(lines) + "\n", regressions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop per round")
    parser.add_argument("--samples", type=int, default=8192, help="synthetic examples")
    parser.add_argument("--cli-repeat", type=int, default=5, help="runs per CLI timing")
    parser.add_argument("--skip-convert", action="store_true", help="leave out convert rows")
    parser.add_argument("--skip-fsdp", action="store_true", help="leave out the FSDP/DDP row")
    parser.add_argument("--no-save", action="store_true", help="do not write results.md")
    parser.add_argument(
        "--convert-only",
        action="store_true",
        help="only the convert rows; saved in place of results.md's convert rows",
    )
    args = parser.parse_args()

    if args.convert_only:
        started = time.perf_counter()
        table, regressions = render(convert_rows(), previous_values(RESULTS))
        print(table)
        print(f"measured in {time.perf_counter() - started:.0f} s; python {sys.version.split()[0]}")
        if not args.no_save:
            save_convert_rows(table)
        for regression in regressions:
            print(f"regression (> {REGRESSION - 1:.0%} worse than results.md): {regression}")
        return 1 if regressions else 0

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scaffold-bench-") as tmp:
        root = Path(tmp)
        rows = cli_rows(root, args.cli_repeat)
        rows += training_rows(root, args.samples, args.rounds, args.epochs)
        if not args.skip_fsdp:
            rows.append(fsdp_row(root))
    if not args.skip_convert:
        rows += convert_rows()
    table, regressions = render(rows, previous_values(RESULTS))
    print(table)
    elapsed = time.perf_counter() - started
    print(f"measured in {elapsed:.0f} s; CPU, 1 thread; python {sys.version.split()[0]}")
    if not args.no_save:
        header = (
            "# Latest benchmark table\n\nWritten by `python benchmarks/run.py`"
            " (see README.md for what each row means).\n\n"
        )
        RESULTS.write_text(header + table + _other_sections(), encoding="utf-8")
    for regression in regressions:
        print(f"regression (> {REGRESSION - 1:.0%} worse than results.md): {regression}")
    return 1 if regressions else 0


if __name__ == "__main__":
    raise SystemExit(main())
