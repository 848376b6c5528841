"""`scaffold convert --verify`: train the original and the converted script for N steps, compare.

Both scripts run in a subprocess (scaffold itself never imports torch) under _verify_runner.py,
with the interpreter given by --python (default: the one running scaffold), the same seed and
the same environment, so on the same device. Each run records the first N back-propagated
losses and stops there (os._exit right after the N-th loss is recorded); with `--steps all` it
runs to its end. Then the model's weights at that moment are compared as well
(_verify_weights.py): the original's run saves them, the converted one's compares.

Where they run: each run gets its own scratch folder (tempfile), holding a mirror of the file
system on the way to the current folder and to the script's folder: real folders whose entries
are symlinks to the user's files. The run's working folder is the mirror of the current folder,
and the script sits in the mirror of its own folder, so `data/train.csv`, `../data` and paths
relative to `__file__` read the user's own data. Whatever a run writes (checkpoints, logs,
lightning_logs/, downloads, chmod/utime/setxattr) lands in its scratch folder, which is
deleted afterwards: before a change through the mirror, the folders on its path are made real
and a file whose content or metadata changes becomes a copy (copy on write). A change by
absolute path into the current folder, the script's folder or the output's folder is refused
(PermissionError in the script), so the runs change nothing beside the output file. SIGTERM or
SIGINT to scaffold kills the run's process group and deletes the scratch folder (Interrupted).

The converted code runs under the output's file name, in the mirror of the ORIGINAL's folder,
so both see the same files, sibling modules and working folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from torch_scaffold.convert import _verify_runner as runner
from torch_scaffold.convert._verify_weights import ATOL, RTOL

RUNNER = Path(runner.__file__)
SEED = 0
# Losses and weights agree when |original - converted| <= ATOL + RTOL * |original| (the shared
# loss check's tolerance); those equal bit for bit are reported as identical.

OK, MISMATCH, UNVERIFIED = "ok", "mismatch", "unverified"


@dataclass
class Run:
    losses: list[float] = field(default_factory=list)
    ended: str = "error"  # steps | end | exit | error | timeout
    error: str | None = None
    blocked: list[str] = field(default_factory=list)
    blocked_why: list[str] = field(default_factory=list)  # one reason per blocked path
    # the original's: {"count": n} (saved) or {"none": why}; the converted one's: {"count": n,
    # "exact": bool}, {"count": n, "tensor": name, "why": ...}, {"differs": ...} or {"none": why}
    weights: dict | None = None
    seconds: float = 0.0


@dataclass
class Verdict:
    status: str  # OK, MISMATCH or UNVERIFIED
    message: str
    hint: str | None = None
    weights: str | None = None  # with OK: how the weights compared, or why they were not
    original: Run | None = None
    converted: Run | None = None


class Interrupted(Exception):
    """SIGTERM or SIGINT reached scaffold during --verify; the runs are stopped, their folders
    removed. exit_code: 128 + the signal's number (143, 130), as a shell reports it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum


@contextmanager
def _stopped_by_signals():
    """Turn SIGTERM and SIGINT into Interrupted in the main thread (waiting for a run), so that
    the `finally:` blocks kill the run's process group and delete its scratch folder; by
    default SIGTERM ends scaffold at once and leaves both behind."""
    names = [signal.SIGTERM, signal.SIGINT]

    def stop(signum, frame):
        for number in names:  # cleaning up: a second signal must not interrupt that
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    try:
        previous = {number: signal.signal(number, stop) for number in names}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def verify(
    original_code: str,
    converted_code: str,
    script: Path,
    converted_name: str,
    *,
    steps: int | None = 20,
    timeout: float = 600.0,
    python: str | None = None,
    args: tuple[str, ...] = (),
    protect: tuple[Path, ...] = (),
    encoding: str = "utf-8",
) -> Verdict:
    """Run both versions (one after the other) and compare their first `steps` losses (None:
    whole runs), then the weights."""
    python = python or sys.executable
    cwd = Path.cwd().resolve()
    script = script.resolve() if script.exists() else script.absolute()
    folders = {cwd, script.parent, *(Path(p).resolve() for p in protect)}

    def run(label: str, code: str, name: str, weights: list[str]) -> Run:
        return _run(
            scratch / label,
            code,
            script.parent / name,
            cwd,
            python,
            steps,
            timeout,
            args,
            folders,
            encoding,
            weights,
        )

    with _stopped_by_signals():
        scratch = Path(tempfile.mkdtemp(prefix="scaffold-verify-"))
        try:
            saved = scratch / "weights.pt"
            original = run("original", original_code, script.name, [f"--weights-out={saved}"])
            converted = Run(ended="skipped")
            if compare(original, converted, steps, timeout).status != UNVERIFIED:
                theirs = [f"--weights-in={saved}"] if "count" in (original.weights or {}) else []
                converted = run("converted", converted_code, converted_name, theirs)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    verdict = compare(original, converted, steps, timeout)
    verdict.original, verdict.converted = original, converted
    return verdict


def compare(original: Run, converted: Run, steps: int | None, timeout: float) -> Verdict:
    """The verdict on two runs: the first step that differs, or how far they agree."""
    n = len(original.losses)
    goal = "the end of its run" if steps is None else f"{steps} losses"
    if steps is None:
        steps = math.inf  # whole runs: every comparison below is "before the end"
    if original.ended == "timeout" and n < steps:
        return Verdict(
            UNVERIFIED,
            f"the original script did not reach {goal} within {_seconds(timeout)} "
            f"(stopped after {n}); nothing compared",
            hint="raise --timeout, or lower --steps",
        )
    if original.ended in ("error", "exit") and n < steps:
        return Verdict(
            UNVERIFIED,
            f"the original script failed after {_count(n)}: {original.error}; nothing compared",
            hint=_run_hint(original),
        )
    if n == 0:
        return Verdict(
            UNVERIFIED,
            "the original script ended without back-propagating a loss; nothing to compare",
            hint="--verify compares the losses passed to backward(); pass the script's "
            "arguments after --",
        )
    k = len(converted.losses)
    for step, (a, b) in enumerate(zip(original.losses, converted.losses), 1):
        if not _close(a, b):
            same = {1: "from the first loss on", 2: "loss 1 agrees"}.get(
                step, f"losses 1-{step - 1} agree"
            )
            return Verdict(
                MISMATCH,
                f"loss {step} differs: original {a!r}, converted {b!r} ({same})",
                hint="the conversion changed how the script trains; compare the two scripts "
                "(scaffold convert --diff) and report it if the converter is at fault",
            )
    if k < n:
        if converted.ended == "timeout":
            return Verdict(
                UNVERIFIED,
                f"the converted script did not reach {goal} within {_seconds(timeout)} "
                f"(the first {_count(k)} agree with the original's)",
                hint="raise --timeout, or lower --steps",
            )
        how = f"failed: {converted.error}" if converted.error else "ended"
        return Verdict(
            MISMATCH,
            f"the converted script {how} after {_count(k)}; the original went on to "
            f"{_count(n)} (the first {k} agree)",
            hint=(
                _run_hint(converted)
                if converted.blocked
                else "run the converted script to see the failure, and report it if the "
                "converter is at fault"
            ),
        )
    if k > n:
        return Verdict(
            MISMATCH,
            f"the original script ended after {_count(n)}, the converted one went on "
            f"(the first {n} agree)",
            hint="the conversion changed how long the script trains; compare the two scripts",
        )
    if n < steps and converted.ended in ("error", "exit"):  # the original ended cleanly
        return Verdict(
            MISMATCH,
            f"the converted script failed after its last loss: {converted.error}; the original "
            f"ended cleanly (both made the same {_count(n)})",
            hint="run the converted script to see the failure, and report it if the converter "
            "is at fault",
        )
    when = "final weights" if n < steps else f"weights at loss {n}"
    weighed = _weights(original, converted, when, n)
    if isinstance(weighed, Verdict):
        return weighed
    exact = original.losses == converted.losses
    agree = "identical" if exact else f"agree within {ATOL:g} + {RTOL:g} x |loss|"
    if steps == math.inf:
        message = f"all {n} losses {agree} (whole runs)"
    elif n < steps:
        message = f"all {n} losses {agree} (both scripts ended before {steps} steps)"
    else:
        worst = max(abs(a - b) for a, b in zip(original.losses, converted.losses))
        extra = "" if exact else f" (largest difference {worst:.3g})"
        message = f"first {n} losses {agree}{extra}"
    return Verdict(OK, message, weights=weighed)


def _weights(original: Run, converted: Run, when: str, n: int) -> str | Verdict:
    """Once the losses agree: the weights' line, or the mismatch of a tensor that differs."""
    weights = converted.weights or {}
    if original.ended != converted.ended:  # one was stopped at loss N, the other ended there
        return f"weights not compared: the original was stopped at loss {n}, the converted ended"
    if "tensor" in weights or "differs" in weights:
        what = weights.get("differs") or f"first differing tensor {weights['tensor']}"
        detail = f" ({weights['why']})" if "why" in weights else ""
        return Verdict(
            MISMATCH,
            f"{when} differ: {what}{detail}; all {_count(n)} agree",
            hint="the conversion changed how the script updates the model; compare the two "
            "scripts (scaffold convert --diff) and report it if the converter is at fault",
        )
    if "count" in weights:
        same = "identical" if weights.get("exact") else f"agree within {ATOL:g} + {RTOL:g} x |w|"
        return f"{when} {same} ({weights['count']} tensors)"
    why = (original.weights or {}).get("none") or weights.get("none") or "not recorded"
    return f"weights not compared: {why}"


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):  # NaN: the same only if both are
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= ATOL + RTOL * abs(a)


def _count(n: int) -> str:
    return f"{n} loss" if n == 1 else f"{n} losses"


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


def _run_hint(run: Run) -> str:
    if run.error and run.error.startswith("cannot start"):
        return "pass --python the path of a Python interpreter that has torch"
    if run.error and "No module named 'torch'" in run.error:
        return "pass --python with the interpreter that runs your script (it needs torch)"
    if run.blocked:
        why = run.blocked_why[0] if run.blocked_why else "changes a file of yours"
        return (
            f"--verify blocked a change to {run.blocked[0]} (the script {why}); write "
            "relative to the working folder, or verify a copy of the project"
        )
    return (
        "--verify runs `python SCRIPT ARGS` from the current folder; pass the script's "
        "arguments after --, and check that it runs on its own"
    )


def _run(
    root: Path,
    code: str,
    script: Path,
    cwd: Path,
    python: str,
    steps: int,
    timeout: float,
    args: tuple[str, ...],
    protect: set[Path],
    encoding: str = "utf-8",
    weights: list[str] = (),
) -> Run:
    """One run in its own scratch folder `root`: build the mirror, start, wait, read the trace."""
    root.mkdir()
    mirror = root / "fs"
    mirror.mkdir()
    runner.populate(str(mirror), os.sep)
    mirror_cwd = _mirrored(mirror, cwd)
    mirror_script = _mirrored(mirror, script)
    runner.materialize(str(mirror_cwd), str(mirror), "dir")
    runner.materialize(str(mirror_script.parent), str(mirror), "dir")
    if os.path.lexists(mirror_script):
        os.unlink(mirror_script)
    mirror_script.write_text(code, encoding=encoding)  # the script's own (its coding line)
    trace = root / "trace.json"
    command = [
        python,
        str(RUNNER),
        "--steps",
        "all" if steps is None else str(steps),
        "--seed",
        str(SEED),
        "--out",
        str(trace),
        "--mirror",
        str(mirror),
        *(f"--protect={folder}" for folder in sorted(protect)),
        *weights,
        str(mirror_script),
        "--",
        *args,
    ]
    env = dict(
        os.environ,
        PYTHONHASHSEED=str(SEED),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PWD=str(mirror_cwd),
    )
    log_path = root / "log.txt"
    started = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(
                command,
                cwd=mirror_cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            return Run(error=f"cannot start {python}: {err.strerror or err}")
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(process)
    seconds = time.monotonic() - started
    if trace.exists():
        data = json.loads(trace.read_text())
        run = Run(
            losses=[float(x) for x in data["losses"]],
            ended=data["ended"],
            error=data.get("error"),
            blocked=list(data.get("blocked") or ()),
            blocked_why=list(data.get("blocked_why") or ()),
            weights=data.get("weights"),
        )
    else:
        run = Run(losses=[], ended="error", error=_last_line(log_path))
    if timed_out and run.ended != "steps":
        run.ended, run.error = "timeout", f"timed out after {_seconds(timeout)}"
    run.seconds = seconds
    return run


def _mirrored(mirror: Path, path: Path) -> Path:
    return mirror.joinpath(*path.parts[1:])


def _kill_group(process: subprocess.Popen) -> None:
    """Stop the run and whatever it started (DataLoader workers): its whole process group."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover -- Windows
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [line for line in lines if line]
    return lines[-1] if lines else "it exited without a trace"
