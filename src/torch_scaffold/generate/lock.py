"""One `scaffold new` at a time per parent folder: an advisory lock on the folder itself.

flock() on a descriptor of the target's parent folder. The kernel drops it when the process
dies, so a killed run never leaves a stale lock, and nothing is created on disk. Where flock
is not available (Windows, some network file systems) the run goes ahead unlocked: its moves
still never replace anything they did not create, but two racing runs may then both fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from torch_scaffold.errors import OutputError

WAIT_SECONDS = 60.0  # a write takes well under a second; a minute means something is stuck


@contextmanager
def folder_lock(folder: Path, target: Path, wait: float = WAIT_SECONDS) -> Iterator[bool]:
    """Hold the lock on `folder` (the parent of `target`); yields whether it is really held."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield False
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        yield _acquire(fcntl, fd, target, wait)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fcntl, fd: int, target: Path, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OutputError(
                    f"another scaffold run has been writing beside this folder for {wait:.0f}s",
                    where=str(target),
                    hint="wait for it to finish, or stop it, then run again",
                ) from None
            time.sleep(0.02)
        except OSError:  # no flock on this file system
            return False
