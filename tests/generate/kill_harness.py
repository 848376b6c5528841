"""Kill -9 a generated project's training at chosen moments, resume it, compare the weights.

    python kill_harness.py PROJECT_DIR PACKAGE PLAN.json RESULT.json

Run as a script by test_crash_resume.py (not collected by pytest). It imports the project's
train module once and forks one child per training run, so a trial costs a training run, not
a torch/Lightning import. Each trial:

1. forks a child that trains with hooks: every torch.save is written in slow chunks, and at
   its kill point (before the backward of a given step, after a given chunk of a given
   checkpoint write, or just before a checkpoint's rename) the child stops itself (SIGSTOP);
   this process then sends SIGKILL, so the kill lands exactly there. "random" trials have
   no kill point: the child is killed after a random delay instead, wherever it is;
2. checks what the killed run left: last.ckpt, when present, must load (weights_only) and
   hold a whole checkpoint;
3. resumes with `--resume last` in a fresh child (or, when no last.ckpt was written yet,
   checks that `--resume last` fails with exit code 2, then trains from scratch);
4. compares the final weights with an uninterrupted reference run (torch.equal) and checks
   that no temporary checkpoint file is left.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

CHECKPOINT_KEYS = {
    "model": ("model", "optimizer", "epoch", "global_step"),
    "state_dict": ("state_dict", "optimizer_states", "loops", "epoch", "global_step"),
}


def _send(fd: int, message: str) -> None:
    os.write(fd, (message + "\n").encode())


def _stop_here(fd: int, where: str) -> None:
    _send(fd, f"stop {where}")
    os.kill(os.getpid(), signal.SIGSTOP)
    # Never reached: the parent kills a stopped child.


def _install_hooks(trial: dict, fd: int, chunks: int, chunk_delay: float) -> None:
    """Slow, observable checkpoint writes and the trial's kill point, in this (child) process."""
    original_save = torch.save
    original_backward = torch.Tensor.backward
    original_replace = os.replace
    counts = {"step": 0, "save": 0}
    kind = trial["kind"]

    def backward(self, *args, **kwargs):
        counts["step"] += 1
        if kind == "step" and counts["step"] == trial["step"]:
            _stop_here(fd, f"step {counts['step']}")
        return original_backward(self, *args, **kwargs)

    def save(obj, f, *args, **kwargs):
        counts["save"] += 1
        number = counts["save"]
        buffer = io.BytesIO()
        original_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        _send(fd, f"save {number} begin {len(data)}")
        # closed below when opened here, else the caller's
        handle = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f  # noqa: SIM115
        size = -(-len(data) // chunks)
        for index in range(chunks):
            handle.write(data[index * size : (index + 1) * size])
            handle.flush()
            if kind == "save" and trial["save"] == number and trial["chunk"] == index:
                _stop_here(fd, f"save {number} chunk {index}")
            time.sleep(chunk_delay)
        if handle is not f:
            handle.close()
        _send(fd, f"save {number} end")

    def replace(source, destination, *args, **kwargs):
        if (
            kind == "before_replace"
            and str(destination).endswith("last.ckpt")
            and trial["save"] <= counts["save"]
        ):
            _stop_here(fd, f"before rename of save {counts['save']}")
        return original_replace(source, destination, *args, **kwargs)

    torch.save = save
    torch.Tensor.backward = backward
    os.replace = replace


def _fork_run(train, argv, log: Path, trial=None, chunks=8, chunk_delay=0.0):
    """Fork a child that runs train.main(argv); returns (pid, read end of its message pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 1
        try:
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            if trial is not None:
                _install_hooks(trial, write_fd, chunks, chunk_delay)
            _send(write_fd, "start")
            train.main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 (reported, then the exit code)
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _read_lines(fd: int, timeout: float | None) -> tuple[list[str], bool]:
    """Lines available within `timeout` (None: until a 'stop' line or EOF); (lines, eof)."""
    lines, buffer, deadline = [], b"", None if timeout is None else time.monotonic() + timeout
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return lines, False
        chunk = os.read(fd, 4096)
        if not chunk:
            return lines + ([buffer.decode()] if buffer else []), True
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines += [line.decode() for line in complete]
        if any(line.startswith("stop ") for line in lines):
            return lines, False


def _wait(pid: int, read_fd: int, limit: float = 300.0) -> int:
    """Exit code of a child run; a run that hangs is killed and reported as -9."""
    _, eof = _read_lines(read_fd, limit)
    os.close(read_fd)
    if not eof:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _weights(path: Path, key: str) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {"weights": state[key], "epoch": state["epoch"], "global_step": state["global_step"]}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp*")) if folder.is_dir() else []


def run_trial(train, plan, trial, index, reference) -> dict:
    root = Path(plan["root"]) / f"trial-{index:02d}"
    root.mkdir(parents=True)
    argv = [*plan["argv"], "--output-dir", str(root / "outputs"), "--name", "run"]
    checkpoints = root / "outputs" / "run" / "checkpoints"
    log = root / "log.txt"
    key = plan["weights_key"]
    result = {**trial}

    pid, read_fd = _fork_run(train, argv, log, trial, plan["chunks"], plan["chunk_delay"])
    if trial["kind"] == "random":
        lines, _ = _read_lines(read_fd, trial["delay"])
    else:
        lines, _ = _read_lines(read_fd, 120.0)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    more, _ = _read_lines(read_fd, 0.0)
    os.close(read_fd)
    lines += more
    result["killed"] = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    stops = [line for line in lines if line.startswith("stop ")]
    result["stopped_at"] = stops[0][5:] if stops else None
    begun = [line for line in lines if line.startswith("save ") and " begin" in line]
    ended = [line for line in lines if line.startswith("save ") and line.endswith(" end")]
    result["saves_begun"] = len(begun)
    result["killed_in_save"] = len(begun) > len(ended)
    result["checkpoint_files"] = (
        sorted(p.name for p in checkpoints.glob("*")) if checkpoints.is_dir() else []
    )

    last = checkpoints / "last.ckpt"
    result["last_exists"] = last.exists()
    if last.exists():
        try:
            state = torch.load(last, map_location="cpu", weights_only=True)
            result["last_loads"] = all(k in state for k in CHECKPOINT_KEYS[key])
            result["resumed_from_epoch"] = state["epoch"]
        # any exception: a torn checkpoint is the failure this test exists to catch
        except Exception as err:  # noqa: BLE001
            result["last_loads"] = False
            result["load_error"] = f"{type(err).__name__}: {str(err)[:200]}"
        code = _wait(*_fork_run(train, [*argv, "--resume", "last"], log))
        result["resume_exit"] = code
    else:
        result["last_loads"] = None
        # Nothing to resume from: `--resume last` must say so (exit 2), then start over.
        result["resume_last_without_checkpoint_exit"] = _wait(
            *_fork_run(train, [*argv, "--resume", "last"], log)
        )
        # A new run: the killed one keeps its folder (and name) when it got as far as one.
        again = [*plan["argv"], "--output-dir", str(root / "outputs"), "--name", "again"]
        result["resume_exit"] = _wait(*_fork_run(train, again, log))
        checkpoints = root / "outputs" / "again" / "checkpoints"
        last = checkpoints / "last.ckpt"
    if result["resume_exit"] == 0 and last.exists():
        final = _weights(last, key)
        result["equal"] = (
            final["epoch"] == reference["epoch"]
            and final["global_step"] == reference["global_step"]
            and final["weights"].keys() == reference["weights"].keys()
            and all(
                torch.equal(final["weights"][n], reference["weights"][n]) for n in final["weights"]
            )
        )
    else:
        result["equal"] = False
        result["log_tail"] = log.read_text(errors="replace")[-1500:]
    result["leftovers_after_resume"] = _leftovers(checkpoints)
    return result


def main() -> None:
    project, package, plan_file, result_file = (str(Path(arg).resolve()) for arg in sys.argv[1:5])
    package = Path(package).name
    plan = json.loads(Path(plan_file).read_text())
    os.chdir(project)
    sys.path.insert(0, project)
    torch.set_num_threads(1)
    try:  # no tqdm monitor thread: a thread holding a lock at fork() can deadlock the child
        import tqdm

        tqdm.tqdm.monitor_interval = 0
        # tqdm's default write lock includes a multiprocessing semaphore, which every child
        # forked from here would share: a child killed while drawing its bar left it held,
        # and the next child's bar waited forever (a CI run hung so). A thread lock is
        # copied into each child instead.
        tqdm.tqdm.set_lock(threading.RLock())
    except ImportError:
        pass
    train = importlib.import_module(f"{package}.train")

    root = Path(plan["root"])
    # Warm up here, once: the first run in a process pays for lazy imports and first-call
    # set-up (seconds); every forked child then starts warm.
    train.main([*plan["argv"], "--output-dir", str(root), "--name", "warm-up"])
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:  # forking with other threads alive risks deadlocked children
        print(f"warning: threads alive before forking: {threads}", file=sys.stderr)
    started = time.monotonic()
    code = _wait(
        *_fork_run(
            train,
            [*plan["argv"], "--output-dir", str(root), "--name", "reference"],
            root / "reference.log",
        )
    )
    duration = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"reference run failed:\n{(root / 'reference.log').read_text()[-3000:]}")
    reference = _weights(root / "reference" / "checkpoints" / "last.ckpt", plan["weights_key"])

    results = []
    for index, trial in enumerate(plan["trials"]):
        if trial["kind"] == "random":  # fractions of the reference run's duration
            # the killed runs write slowly: stretch the reference duration by their save time
            slow = plan["expected_saves"] * plan["chunks"] * plan["chunk_delay"]
            trial = {**trial, "delay": trial["fraction"] * (duration + slow)}
        results.append(run_trial(train, plan, trial, index, reference))
    Path(result_file).write_text(json.dumps({"reference_seconds": duration, "trials": results}))


if __name__ == "__main__":
    main()
