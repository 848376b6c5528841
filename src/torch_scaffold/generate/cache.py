"""An on-disk cache for work that depends only on its input: formatted code and compiled templates.

`scaffold new` spends most of its time running black over the rendered files and compiling
the Jinja templates, and both give the same result for the same input every time. Entries are
keyed by a SHA-256 of everything the result depends on (the input's content) and carry a
checksum of their own, so a stale or torn entry is never used, only recomputed.

The checksum does not stop someone who can write the folder: they can recompute it. So a folder
that someone else owns, or that the group or everyone may write, is not used at all: an entry
there (black's output is copied into projects, Jinja's compiled templates run in scaffold) could
be anyone's. A caller can also pass a check of the entry's text (black's output must parse as
Python: formatting.py). The cache is an optimisation: when its folder cannot be created, written or
trusted, everything still works, just slower.

Location: $TORCH_SCAFFOLD_CACHE_DIR, else $XDG_CACHE_HOME/torch-scaffold, else
~/.cache/torch-scaffold. TORCH_SCAFFOLD_CACHE_DIR=off switches it off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

OFF = "off"


def cache_dir() -> Path | None:
    """The cache folder (not created here), or None when switched off."""
    chosen = os.environ.get("TORCH_SCAFFOLD_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", OFF) else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "torch-scaffold"


def subfolder(name: str) -> Path | None:
    """cache_dir()/name, created private; None when the cache is off, or the folder cannot be
    made or is someone else's."""
    root = cache_dir()
    if root is None:
        return None
    folder = root / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
        if _own(info) and _shared(info):
            # Made before scaffold kept its cache private (a umask of 002): its entries could
            # be anyone's, so they are dropped, and the folder made private.
            shutil.rmtree(folder)
            folder.mkdir(mode=0o700)
            info = folder.stat()
    except OSError:
        return None
    if not _own(info) or _shared(info) or not os.access(folder, os.W_OK):
        return None
    return folder


def _own(info: os.stat_result) -> bool:
    getuid = getattr(os, "getuid", None)  # POSIX only; Windows has ACLs instead
    return getuid is None or info.st_uid == getuid()


def _shared(info: os.stat_result) -> bool:
    """Writable by the group or everyone (POSIX modes; Windows has ACLs instead)."""
    return hasattr(os, "getuid") and bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def key_of(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_text(
    folder: Path | None, key: str, valid: Callable[[str], bool] | None = None
) -> str | None:
    """The entry's text when present, intact and `valid` (when given), else None."""
    if folder is None:
        return None
    try:
        stored = (folder / key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    checksum, _, text = stored.partition("\n")
    if checksum != _checksum(text) or (valid is not None and not valid(text)):
        return None
    return text


def write_text(folder: Path | None, key: str, text: str) -> None:
    """Store an entry atomically (a reader sees the old entry or the whole new one)."""
    if folder is None:
        return
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(f"{_checksum(text)}\n{text}")
            os.replace(temp, folder / key)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass  # a full or read-only disk: the result was computed anyway
