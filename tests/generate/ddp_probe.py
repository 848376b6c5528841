"""Test helper: train a generated project in one DDP process, then save that rank's weights.

    python ddp_probe.py PROJECT_DIR PACKAGE OUT_DIR -- TRAIN FLAGS...

Started by torchrun (plain style) or re-started by Lightning's own launcher (Lightning
style), once per rank. It records the DistributedDataParallel wrapper the project builds (an
FSDP run has none: only its threads are checked), runs the project's unchanged
`train.main`, then writes OUT_DIR/rank<N>.pt with the wrapped module's final state_dict, so
the test can compare the ranks' weights, and OUT_DIR/rank<N>.threads with the names of the
native threads (not Python's) that `train.main` left running: a process group still alive
keeps its communication threads, which abort the process if they outlive the interpreter.
Nothing in the generated project knows about this file.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

# A thread that has been joined can still be listed in /proc for a moment while the
# kernel finishes its exit; a busy machine stretches that moment. A thread of a live
# process group, the bug this measures, stays for good.
SETTLE_SECONDS = 10.0


def native_threads() -> set[int]:
    """Thread ids of this process that Python's threading module did not start (Linux)."""
    python_threads = {thread.native_id for thread in threading.enumerate()}
    return {int(tid) for tid in os.listdir("/proc/self/task")} - python_threads


def thread_name(tid: int) -> str:
    try:
        return Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    except OSError:  # it ended meanwhile
        return "?"


def threads_still_running(before: set[int]) -> list[str]:
    """Names of the native threads started since `before` that do not end within a while."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (left := native_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(thread_name(tid) for tid in left)


def main() -> None:
    project, package, out = sys.argv[1:4]
    assert sys.argv[4] == "--", "usage: ddp_probe.py PROJECT PACKAGE OUT -- FLAGS..."
    sys.path.insert(0, project)
    os.chdir(project)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    wrapped: list[tuple[int, torch.nn.Module]] = []
    original_init = DistributedDataParallel.__init__

    def record(self, module, *args, **kwargs):
        original_init(self, module, *args, **kwargs)
        wrapped.append((dist.get_rank(), module))

    DistributedDataParallel.__init__ = record
    train = importlib.import_module(f"{package}.train")
    threads_before = native_threads()
    train.main(sys.argv[5:])
    threads_left = threads_still_running(threads_before)
    Path(out).mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))  # Lightning's launcher sets none in rank 0
    if wrapped:  # DDP; an FSDP model shards itself, and only its threads are checked
        assert len(wrapped) == 1, f"expected one DDP model per process, got {len(wrapped)}"
        rank, module = wrapped[0]
        state = {name: value.detach().cpu() for name, value in module.state_dict().items()}
        torch.save(state, Path(out) / f"rank{rank}.pt")
    (Path(out) / f"rank{rank}.threads").write_text(" ".join(threads_left) + "\n")


if __name__ == "__main__":
    main()
