"""Write a rendered project to disk, all or nothing.

Every file is first written into a temporary folder beside the target (same
file system, so the final move is a rename). A failure before the move removes
the temporary folder and leaves the target exactly as it was.

- New or empty target: the temporary folder is renamed onto it in one step.
- Non-empty target: refused (OutputError) unless `force`. With `force`, each
  generated file replaces its namesake atomically (os.replace); files scaffold
  does not generate are never deleted or modified, and are reported as kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from torch_scaffold.errors import OutputError


@dataclass(frozen=True)
class WriteResult:
    target: Path
    written: list[str]
    kept: list[str] = field(default_factory=list)  # files already there that scaffold left alone
    replaced: list[str] = field(default_factory=list)  # existing files overwritten (--force)


def _existing_files(target: Path) -> list[str]:
    return sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if not p.is_dir())


def _check_target(target: Path, force: bool) -> list[str]:
    if target.exists() and not target.is_dir():
        raise OutputError(
            "exists and is not a folder", where=str(target), hint="choose another folder with -o"
        )
    existing = _existing_files(target) if target.is_dir() else []
    if existing and not force:
        raise OutputError(
            f"folder is not empty ({len(existing)} files)",
            where=str(target),
            hint="choose another folder with -o, or pass --force to overwrite the generated "
            "files (files scaffold does not generate are kept)",
        )
    return existing


def _stage(files: dict[str, str], staging: Path) -> None:
    for rel, text in files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def _safe_relative(rel: str) -> str:
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        raise OutputError(f"refusing to write outside the target: {rel!r}", where=rel)
    return rel


def write_project(files: dict[str, str], target: str | Path, force: bool = False) -> WriteResult:
    target = Path(target).absolute()
    for rel in files:
        _safe_relative(rel)
    existing = _check_target(target, force)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create folder ({err.strerror})", where=str(target.parent))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.scaffold-", dir=target.parent))
    try:
        _stage(files, staging)
        if not existing:
            if target.exists():
                shutil.rmtree(target)  # holds no files (maybe empty folders): free the name
            os.replace(staging, target)
        else:
            for rel in files:
                destination = target / rel
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, destination)
    except OSError as err:
        raise OutputError(f"could not write the project ({err.strerror or err})", where=str(target))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    generated = set(files)
    return WriteResult(
        target=target,
        written=sorted(files),
        kept=[rel for rel in existing if rel not in generated],
        replaced=[rel for rel in existing if rel in generated],
    )
