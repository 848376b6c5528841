"""Test harness, imported at start-up by every Python process of a launch whose PYTHONPATH
names this folder (torchrun agents and their workers): it records which rank writes which
file under NODE_HARNESS_WATCH, and can hold rank 0 still for a moment, so that the test can
kill the other node while the run is surely not finished. Nothing in the generated project
knows about it.

    NODE_HARNESS_WATCH  folder whose writes are recorded (the runs' output folder)
    NODE_HARNESS_LOG    folder for the records: one file per process, lines "RANK EVENT PATH"
    NODE_HARNESS_STALL  seconds rank 0 sleeps before its first checkpoint write that follows
                        a finished last.ckpt; it touches NODE_HARNESS_LOG/stalled first
"""

import os
import sys
import time

WATCH = os.environ.get("NODE_HARNESS_WATCH")
LOG = os.environ.get("NODE_HARNESS_LOG")
STALL = float(os.environ.get("NODE_HARNESS_STALL", "0"))
RANK = os.environ.get("RANK", "agent")  # torchrun sets RANK in its workers, not in itself
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
_busy = False
_stalled = False


def _is_write(event: str, args: tuple) -> bool:
    if event == "os.rename":  # os.rename and os.replace
        return True
    mode, flags = args[1], args[2]
    if isinstance(mode, str):
        return any(letter in mode for letter in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def _stall_before(path: str) -> None:
    """Rank 0, once: hold still before a checkpoint write once a whole last.ckpt exists."""
    global _stalled
    folder = os.path.dirname(path)
    if _stalled or RANK != "0" or os.path.basename(folder) != "checkpoints":
        return
    if not os.path.exists(os.path.join(folder, "last.ckpt")):
        return
    _stalled = True
    with open(os.path.join(LOG, "stalled"), "w"):
        pass
    time.sleep(STALL)


def _hook(event: str, args: tuple) -> None:
    global _busy
    if _busy or event not in ("open", "os.rename"):
        return
    path = args[1] if event == "os.rename" else args[0]  # a rename's destination
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.startswith(WATCH) or not _is_write(event, args):
        return
    _busy = True
    try:
        if STALL:
            _stall_before(path)
        with open(os.path.join(LOG, f"writes-{os.getpid()}.txt"), "a") as record:
            record.write(f"{RANK} {event} {path}\n")
    finally:
        _busy = False


if WATCH and LOG:
    WATCH = os.path.abspath(WATCH)
    sys.addaudithook(_hook)
