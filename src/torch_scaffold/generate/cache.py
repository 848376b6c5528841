"""An on-disk cache for work that depends only on its input: formatted code and compiled templates.

`scaffold new` spends most of its time running black over the rendered files and compiling
the Jinja templates, and both give the same result for the same input every time. Entries are
keyed by a SHA-256 of everything the result depends on and carry a checksum of their own, so a
stale, torn or edited entry is never used, only recomputed. The cache is an optimisation: when
its folder cannot be created or written, everything still works, just slower.

Location: $TORCH_SCAFFOLD_CACHE_DIR, else $XDG_CACHE_HOME/torch-scaffold, else
~/.cache/torch-scaffold. TORCH_SCAFFOLD_CACHE_DIR=off switches it off.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
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
    """cache_dir()/name, created; None when the cache is off or the folder cannot be made."""
    root = cache_dir()
    if root is None:
        return None
    folder = root / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def key_of(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_text(folder: Path | None, key: str) -> str | None:
    """The entry's text when present and intact, else None."""
    if folder is None:
        return None
    try:
        stored = (folder / key).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    checksum, _, text = stored.partition("\n")
    return text if checksum == _checksum(text) else None


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
