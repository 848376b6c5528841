"""Write a rendered project to disk, all or nothing.

Every file is first written into a temporary folder beside the target (same
file system, so the final moves are renames). A failure at any point (a full
disk, a permission error) removes the temporary folder, undoes what was moved,
and leaves the target exactly as it was, including folders created on the way.

- The target path is resolved (`-o ../x`, symbolic links, `~`) and the result
  reports the resolved path; absolute and relative targets are both allowed.
- New or empty target: the temporary folder is renamed onto it in one step.
- Non-empty target: refused (OutputError) unless `force`. With `force`, each
  generated file replaces its namesake; the old files are kept aside until every
  file is in place, so a failure halfway restores them. Files scaffold does not
  generate are never deleted or modified, and are reported as kept. A generated
  path that would replace a folder, pass through a file, or pass through a
  symbolic link (and so land outside the target) is refused before anything is
  written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from torch_scaffold.errors import OutputError


@dataclass(frozen=True)
class WriteResult:
    target: Path
    written: list[str]
    kept: list[str] = field(default_factory=list)  # files already there that scaffold left alone
    replaced: list[str] = field(default_factory=list)  # existing files overwritten (--force)


def _existing_files(target: Path) -> list[str]:
    """Every non-folder below target (links to folders count as files: never followed)."""
    found = []

    def fail(err: OSError) -> None:
        raise OutputError(f"cannot read the folder ({err.strerror or err})", where=str(target))

    for folder, subfolders, names in os.walk(target, onerror=fail):
        for name in names + [d for d in subfolders if os.path.islink(os.path.join(folder, d))]:
            found.append(Path(folder, name).relative_to(target).as_posix())
    return sorted(found)


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


def _safe_relative(rel: str) -> str:
    """A relative path that stays inside the target: no '..', no root, no drive, no '.'."""
    pure = PurePosixPath(rel)
    parts = pure.parts
    if (
        not rel
        or pure.is_absolute()
        or Path(rel).is_absolute()
        or "\\" in rel
        or ":" in parts[0]
        or any(part in ("..", ".", "") for part in rel.split("/"))
        or "\x00" in rel
    ):
        raise OutputError(f"refusing to write outside the target: {rel!r}", where=rel)
    return rel


def _check_force_paths(target: Path, files: dict[str, str]) -> None:
    """Under --force, every generated path must land on a plain file or a new name."""
    for rel in files:
        node = target
        for part in PurePosixPath(rel).parts[:-1]:
            node = node / part
            if node.is_symlink():
                raise OutputError(
                    f"{node.relative_to(target).as_posix()} is a symbolic link; writing {rel}"
                    " through it could land outside the target",
                    where=str(target),
                    hint="remove the link or choose another folder with -o",
                )
            if node.exists() and not node.is_dir():
                raise OutputError(
                    f"{node.relative_to(target).as_posix()} is a file, but scaffold needs a"
                    f" folder there for {rel}",
                    where=str(target),
                    hint="move it away or choose another folder with -o",
                )
        destination = target / rel
        if destination.is_dir() and not destination.is_symlink():
            raise OutputError(
                f"{rel} is a folder, but scaffold writes a file there",
                where=str(target),
                hint="move it away or choose another folder with -o",
            )


def _stage(files: dict[str, str], staging: Path) -> None:
    for rel, text in files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p folder; returns the folders it created, deepest first (to undo)."""
    missing = []
    node = folder
    while not node.exists():
        missing.append(node)
        node = node.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create folder ({err.strerror or err})", where=str(folder))
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass


def _replace_files(files: dict[str, str], staging: Path, target: Path) -> None:
    """Move staged files over their namesakes; on failure put every old file back."""
    backup = staging / ".replaced"
    moved: list[tuple[Path, Path | None]] = []  # (destination, its backup or None if new)
    created: list[Path] = []
    try:
        for rel in files:
            destination = target / rel
            created = _make_parents(destination.parent) + created
            kept_aside = None
            if destination.exists() or destination.is_symlink():
                kept_aside = backup / rel
                kept_aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(destination, kept_aside)
            moved.append((destination, kept_aside))
            os.replace(staging / "new" / rel, destination)
    except BaseException:
        for destination, kept_aside in reversed(moved):
            try:
                if kept_aside is not None:
                    os.replace(kept_aside, destination)
                elif destination.exists():
                    destination.unlink()
            except OSError:
                pass
        _remove_empty(created)
        raise


def _move_into_place(folder: Path, target: Path) -> None:
    """Rename folder onto target, which is absent or holds nothing but empty folders."""
    try:
        os.replace(folder, target)  # POSIX replaces an empty folder in the same step
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(target)  # only empty folders (no files: checked): free the name
        os.replace(folder, target)


def write_project(files: dict[str, str], target: str | Path, force: bool = False) -> WriteResult:
    for rel in files:
        _safe_relative(rel)
    try:
        target = Path(target).expanduser().resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable parent
        raise OutputError(f"cannot resolve the path ({err})", where=str(target))
    existing = _check_target(target, force)
    if existing:
        _check_force_paths(target, files)
    created = _make_parents(target.parent)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.scaffold-", dir=target.parent))
    except OSError as err:
        _remove_empty(created)
        raise OutputError(f"cannot write here ({err.strerror or err})", where=str(target.parent))
    try:
        _stage(files, staging / "new")
        if not existing:
            _move_into_place(staging / "new", target)
        else:
            _replace_files(files, staging, target)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(err, OSError):
            raise OutputError(
                f"could not write the project ({err.strerror or err})", where=str(target)
            ) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)
    generated = set(files)
    return WriteResult(
        target=target,
        written=sorted(files),
        kept=[rel for rel in existing if rel not in generated],
        replaced=[rel for rel in existing if rel in generated],
    )
