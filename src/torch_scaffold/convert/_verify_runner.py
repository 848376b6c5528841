"""Run one training script for its first N back-propagated losses (`scaffold convert --verify`).

    python _verify_runner.py --steps N|all --seed S --out TRACE.json --mirror DIR
        [--protect DIR ...] [--weights-out FILE | --weights-in FILE] -- SCRIPT [ARGS...]

This file is executed by path with the interpreter that runs the user's script (it needs torch,
scaffold does not): standard library only at import time, torch imported in main(). It is also
imported by torch_scaffold.convert.verify for `populate` and `materialize`, which build the
scratch folder both runs work in.

What it does:
- seeds random, numpy (when installed) and torch with --seed, then runs SCRIPT as __main__
  (sys.argv = [SCRIPT, *ARGS], sys.path[0] its folder), like `python SCRIPT ARGS`;
- wraps torch.Tensor.backward and torch.autograd.backward: every one-element tensor that is
  back-propagated is recorded, in order (a plain loop and a Lightning Trainer both end there);
- after N losses it writes the trace and leaves with os._exit(0) at once: no `finally:`, no
  Lightning teardown, no checkpoint-on-exit runs after step N (`--steps all`: the whole run);
- where the run reached its N-th loss or its end, the model's weights at that moment (see
  _verify_weights.py) are saved (--weights-out, the original's run) or compared with those
  (--weights-in, the converted one's), and the outcome goes into the trace;
- the script's folder and the current folder are a mirror under --mirror (real folders whose
  entries are symlinks to the user's files). Reading goes through to the user's files; before
  anything is written, renamed or removed through the mirror, the folders on its path become
  real folders (copy on write, one level at a time), so the write lands in the scratch folder.
  A write that would still reach a --protect folder (an absolute path into the user's project)
  is refused with PermissionError, and listed in the trace.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import runpy
import shutil
import sys
import threading

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def populate(mirror_dir: str, real_dir: str) -> None:
    """Fill the (existing, empty) mirror_dir with a symlink to each entry of real_dir."""
    try:
        names = os.listdir(real_dir)
    except OSError:
        return
    for name in names:
        link = os.path.join(mirror_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(real_dir, name), link)


def materialize(path: str, mirror: str, leaf: str | None = None) -> None:
    """Make every folder on `path` (an absolute path under `mirror`) a real folder of the mirror.

    The mirror of a real path /a/b is mirror/a/b. A folder that is still a symlink to a folder
    outside the scratch folder becomes a real folder filled with symlinks to the entries of
    the folder it pointed to (populate), so that what is written below it stays in the scratch
    folder. leaf: "copy" replaces a symlinked file at `path` itself by a copy (a write that
    keeps the content: append, r+), "drop" removes the symlink (a write that truncates), "dir"
    materializes a symlinked folder at `path`, "meta" does "dir" or "copy" as the entry is a
    folder or a file (chmod, utime, setxattr: the change lands on the private copy).
    """
    rel = os.path.relpath(path, mirror)
    if rel == "." or rel.startswith(".."):
        return
    scratch = os.path.dirname(os.path.realpath(mirror))
    parts = rel.split(os.sep)
    current = mirror
    for i, part in enumerate(parts):
        child = os.path.join(current, part)
        last = i == len(parts) - 1
        if os.path.islink(child):
            real = os.path.realpath(child)  # a link the script made need not mirror its path
            if _inside(real, scratch):
                pass  # already private: a link the script made to its own files
            elif os.path.isdir(child) and (not last or leaf in ("dir", "meta")):
                os.unlink(child)
                os.mkdir(child)
                populate(child, real)
            elif last and leaf in ("copy", "drop", "meta") and os.path.isfile(child):
                os.unlink(child)
                if leaf != "drop":
                    shutil.copyfile(real, child)
        elif not os.path.isdir(child):
            return
        current = child


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


# Audit events that change a file in place (its metadata, or its length) without opening it:
# the change must land on a private copy too (chmod through ../data reached the user's file).
_META_EVENTS = (
    "os.chmod",
    "os.chown",
    "os.utime",
    "os.truncate",
    "os.setxattr",
    "os.removexattr",
    "os.chflags",
)
# Events that act on a folder entry itself, not on what a symlink there points to: removing or
# renaming the mirror's link to the user's ckpt.pt changes only the scratch folder.
_ENTRY_EVENTS = ("os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink")


class _Guard:
    """The audit hook: copy on write through the mirror, refuse changes to protected folders."""

    def __init__(self, mirror: str, protect: list[str]):
        self.mirror = mirror
        self.scratch = os.path.dirname(os.path.realpath(mirror))
        self.protect = [os.path.realpath(p) for p in protect]
        self.blocked: list[str] = []
        self.reasons: list[str] = []  # why each blocked change was blocked, for the hint
        self.local = threading.local()

    def __call__(self, event: str, args: tuple) -> None:
        if getattr(self.local, "busy", False):
            return
        for path, leaf, dir_fd in self._written(event, args):
            self.check(path, leaf, entry=event in _ENTRY_EVENTS, dir_fd=dir_fd)

    @staticmethod
    def _written(event: str, args: tuple) -> list[tuple[object, str | None, object]]:
        """(path, leaf, dir_fd) for each path the event changes."""
        if event == "open":
            path, mode, flags = args
            if mode is not None:
                if not any(c in str(mode) for c in "wax+"):
                    return []
                leaf = "drop" if "w" in str(mode) else "copy"
            else:
                if not (flags or 0) & _WRITE_FLAGS:
                    return []
                leaf = "drop" if flags & os.O_TRUNC else "copy"
            return [(path, leaf, None)]
        if event in _META_EVENTS:
            dir_fd = args[-1] if event in ("os.chmod", "os.chown", "os.utime") else None
            return [(args[0], "meta", dir_fd)]
        if event in ("os.mkdir", "os.remove"):
            return [(args[0], None, args[-1])]
        if event == "os.rmdir":  # a mirrored folder becomes a real (empty) one to remove
            return [(args[0], "dir", args[-1])]
        if event == "shutil.rmtree":
            return [(args[0], "dir", args[-1] if len(args) > 1 else None)]
        if event == "os.rename":
            return [(args[0], None, args[2]), (args[1], None, args[3])]
        if event == "os.link":  # the source becomes a private copy: a hard link to the
            return [(args[0], "copy", args[2]), (args[1], None, args[3])]  # user's file is not
        if event == "os.symlink":  # args[0] is only the link's text: nothing is written there
            return [(args[1], None, args[2])]
        return []

    def check(self, path: object, leaf: str | None, entry: bool = False, dir_fd=None) -> None:
        """Copy on write through the mirror, then refuse a change to a protected folder.
        Our own file operations here (mkdir, symlink, unlink, copy) are not checked again."""
        if getattr(self.local, "busy", False):
            return
        self.local.busy = True
        try:
            if isinstance(path, int):
                self._check_fd(path, leaf)
            else:
                self._check(path, leaf, entry, dir_fd)
        finally:
            self.local.busy = False

    def _check_fd(self, fd: int, leaf: str | None) -> None:
        """fchmod, futime, fsetxattr on an open file: an fd opened for writing passed the check
        when it was opened; one opened for reading may be the user's own file."""
        if leaf != "meta":
            return
        try:
            import fcntl

            readonly = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            real = os.path.realpath(f"/proc/self/fd/{fd}")
        except (ImportError, OSError):
            return
        if readonly and not _inside(real, self.scratch):
            self._block(real, "changes a file it opened only for reading")

    def _check(self, path: object, leaf: str | None, entry: bool, dir_fd) -> None:
        if path is None:
            return
        try:
            path = os.fsdecode(os.fspath(path))
        except TypeError:
            return
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            try:  # rmtree removes by name relative to an open folder
                path = os.path.join(os.path.realpath(f"/proc/self/fd/{dir_fd}"), path)
            except OSError:
                return
        absolute = os.path.abspath(path)
        if _inside(absolute, self.mirror):
            materialize(absolute, self.mirror, leaf)
        if entry:  # the entry itself: follow links on the way to it, not the entry
            head, name = os.path.split(absolute)
            real = os.path.join(os.path.realpath(head), name)
        else:
            real = os.path.realpath(absolute)
        if _inside(real, self.scratch):
            return  # the run's own scratch folder (the mirror, the trace)
        for folder in self.protect:
            if _inside(real, folder):
                self._block(real, "writes into your project by absolute path")

    def _block(self, real: str, why: str) -> None:
        self.blocked.append(real)
        self.reasons.append(why)
        raise PermissionError(
            f"scaffold convert --verify: changing {real} is blocked: the script {why}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="_verify_runner")
    parser.add_argument("--steps", required=True, help="N, or all: the whole run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mirror", required=True)
    parser.add_argument("--protect", action="append", default=[])
    parser.add_argument("--weights-out", help="save the model's weights here")
    parser.add_argument("--weights-in", help="compare the model's weights with these")
    parser.add_argument("script")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    # `python _verify_runner.py` put this folder first on sys.path: the script must not import
    # scaffold's modules (parse, plan, rules, ...) in place of its own or installed ones
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    if args.script_args[:1] == ["--"]:
        args.script_args = args.script_args[1:]

    limit = None if args.steps == "all" else int(args.steps)
    guard = _Guard(os.path.abspath(args.mirror), args.protect)
    sys.dont_write_bytecode = True
    trace: list[float] = []
    out = os.path.abspath(args.out)

    def finish(ended: str, error: str | None = None) -> None:
        guard.local.busy = True  # our own files are not the script's writes
        compared = None
        if ended in ("steps", "end"):
            try:
                if args.weights_in:
                    compared = weights.compare(args.weights_in)
                elif args.weights_out:
                    compared = weights.save(args.weights_out, plain_save)
            except Exception as exc:  # noqa: BLE001 -- said in the verdict, never a crash
                compared = {"none": f"the weights could not be compared: {_describe(exc)}"}
        with open(out + ".tmp", "w") as handle:
            json.dump(
                {
                    "losses": trace,
                    "ended": ended,
                    "error": error,
                    "blocked": guard.blocked,
                    "blocked_why": guard.reasons,
                    "weights": compared,
                },
                handle,
            )
        os.replace(out + ".tmp", out)
        guard.local.busy = False

    import random

    import torch

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    try:
        import numpy

        numpy.random.seed(args.seed)
    except ImportError:
        pass
    weights = _sibling("_verify_weights").Weights(torch)
    weights.install()
    plain_save = torch.serialization.save

    def record(tensor) -> None:
        if isinstance(tensor, torch.Tensor) and tensor.numel() == 1:
            value = float(tensor.detach().float().cpu())
            trace.append(value)
            weights.look_up()  # while the script still holds its model
            if limit is not None and len(trace) >= limit:
                finish("steps")
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)

    tensor_backward = torch.Tensor.backward
    autograd_backward = torch.autograd.backward
    inside: list[int] = []  # Tensor.backward calls torch.autograd.backward: record once

    def patched_tensor_backward(self, *a, **k):
        record(self)
        inside.append(1)
        try:
            return tensor_backward(self, *a, **k)
        finally:
            inside.pop()

    def patched_autograd_backward(tensors, *a, **k):
        if not inside and isinstance(tensors, torch.Tensor):
            record(tensors)
        return autograd_backward(tensors, *a, **k)

    torch.Tensor.backward = patched_tensor_backward
    torch.autograd.backward = patched_autograd_backward

    # torch.save and torch.jit.save open their file in C++, out of the audit hook's sight
    def guarded(save):
        def wrapper(obj, f, *a, **k):
            if isinstance(f, (str, bytes, os.PathLike)):
                guard.check(f, "drop")
            return save(obj, f, *a, **k)

        return wrapper

    torch.save = torch.serialization.save = guarded(torch.serialization.save)
    torch.jit.save = guarded(torch.jit.save)
    sys.addaudithook(guard)

    script = os.path.abspath(args.script)
    sys.argv = [script, *args.script_args]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        code = stop.code
        if code in (None, 0):
            finish("end")
        else:
            finish("exit", f"SystemExit: {code}")
        raise
    except BaseException as exc:  # reported in the trace, then re-raised
        finish("error", _describe(exc))
        raise
    finish("end")


def _sibling(name: str):
    """A module beside this file, loaded by path: this folder is not on sys.path (above)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_scaffold{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    main()
