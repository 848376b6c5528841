"""Write a rendered project to disk, all or nothing, and never remove what this run did not make.

Every file is first written into a staging folder beside the target (`.<name>.scaffold-<pid>-*`,
same file system, so moves are renames). Then, with the parent folder locked against other
scaffold runs (lock.py) and a journal saved (journal.py), the files are moved into the target
one by one:

- An absent target is created with os.mkdir, which fails if anything created it meanwhile: the
  atomic claim, so two runs can never both write into one new folder.
- An existing target folder is kept (its inode, mode and owner), even when empty: files are
  moved into it, the folder is never swapped for another (`-o .` is safe).
- Each file goes in with os.link, which fails if the name exists, where a rename would replace
  it: a file that appeared after the checks is never replaced. With `force`, a file that was
  there at the check is first moved aside into the staging folder.
- A failure undoes exactly what this run did (its own files, known by inode; the old files put
  back; the folders it made, when empty) and removes the staging folder. A killed run is undone
  the same way by the next run into the same target.

`scaffold update` writes through the same steps (update_files): its new and merged files replace
their namesakes, and the files it deletes are moved aside into the staging folder after the
moves, so a crash puts them back too.

Refused before anything is written: a non-empty target without `force`; a generated path that
would leave the target, replace a folder, pass through a file or a symbolic link; a generated
path that is one of the run's own inputs (the spec being read). The target path is resolved
(`-o ../x`, symbolic links, `~`) and the result reports the resolved path.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from torch_scaffold.errors import OutputError
from torch_scaffold.generate.journal import (
    NEW,
    OLD,
    Journal,
    mark_committed,
    new_staging_prefix,
    recover,
    roll_back,
    stuck_error,
)
from torch_scaffold.generate.lock import folder_lock

# os.link fails with these where the file system has no hard links (FAT, some network shares).
_NO_HARD_LINKS = {errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
# Listed as one entry, never walked: a repository's internals are not the user's files.
_NOT_WALKED = (".git",)


@dataclass(frozen=True)
class WriteResult:
    target: Path
    written: list[str]
    kept: list[str] = field(default_factory=list)  # files already there that scaffold left alone
    replaced: list[str] = field(default_factory=list)  # existing files overwritten (--force)
    recovered: list[str] = field(default_factory=list)  # interrupted earlier runs undone


def _existing_files(target: Path) -> list[str]:
    """Every non-folder below target (links to folders count as files: never followed);
    a `.git` folder counts as one entry, `.git/`."""
    found = []

    def fail(err: OSError) -> None:
        raise OutputError(f"cannot read the folder ({err.strerror or err})", where=str(target))

    for folder, subfolders, names in os.walk(target, onerror=fail):
        for name in list(subfolders):
            rel = Path(folder, name).relative_to(target).as_posix()
            if os.path.islink(os.path.join(folder, name)):
                found.append(rel)
            elif name in _NOT_WALKED:
                found.append(f"{rel}/")
                subfolders.remove(name)
        found.extend(Path(folder, name).relative_to(target).as_posix() for name in names)
    return sorted(found)


def check_folder(target: Path) -> None:
    """The target is a folder or nothing (a FIFO, a device, a file are refused)."""
    if target.exists() and not target.is_dir():
        raise OutputError(
            "exists and is not a folder", where=str(target), hint="choose another folder with -o"
        )


def _check_target(target: Path, force: bool) -> list[str]:
    check_folder(target)
    existing = _existing_files(target) if target.is_dir() else []
    if existing and not force:
        raise OutputError(
            f"folder is not empty ({len(existing)} files)",
            where=str(target),
            hint="choose another folder with -o, or pass --force to overwrite the generated "
            "files (files scaffold does not generate are kept)",
        )
    return existing


def stays_inside(rel: object) -> bool:
    """A relative path that stays inside the target: no '..', no root, no drive, no '.'."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        return False
    pure = PurePosixPath(rel)
    return not (
        pure.is_absolute()
        or Path(rel).is_absolute()
        or "\\" in rel
        or ":" in pure.parts[0]
        or any(part in ("..", ".", "") for part in rel.split("/"))
    )


def _safe_relative(rel: str) -> str:
    if not stays_inside(rel):
        raise OutputError(f"refusing to write outside the target: {rel!r}", where=rel)
    return rel


def check_write_paths(
    target: Path, files: Iterable[str], way_out: str = "choose another folder with -o"
) -> None:
    """Under --force (and in update), every path written must stay inside the target and land
    on a plain file or a new name, through folders only: never through a symbolic link that
    could lead out."""
    for rel in files:
        _safe_relative(rel)
        node = target
        for part in PurePosixPath(rel).parts[:-1]:
            node = node / part
            if node.is_symlink():
                raise OutputError(
                    f"{node.relative_to(target).as_posix()} is a symbolic link; writing {rel}"
                    " through it could land outside the target",
                    where=str(target),
                    hint=f"remove the link or {way_out}",
                )
            if node.exists() and not node.is_dir():
                raise OutputError(
                    f"{node.relative_to(target).as_posix()} is a file, but scaffold needs a"
                    f" folder there for {rel}",
                    where=str(target),
                    hint=f"move it away or {way_out}",
                )
        destination = target / rel
        if destination.is_dir() and not destination.is_symlink():
            raise OutputError(
                f"{rel} is a folder, but scaffold writes a file there",
                where=str(target),
                hint=f"move it away or {way_out}",
            )


def _stage(files: dict[str, str], staging: Path) -> None:
    for rel, text in files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def _check_inputs(target: Path, files: dict[str, str], inputs: dict[str, str]) -> None:
    """A generated file must not be one the run is reading (`new p/config.yaml -o p --force`)."""
    for rel in files:
        for what, path in inputs.items():
            if _same_file(target / rel, Path(path)):
                raise OutputError(
                    f"is {what}, and scaffold would replace it with the generated {rel}",
                    where=str(path),
                    hint=f"move or rename it out of the way (outside {target}, or to a name"
                    " scaffold does not generate), then pass its new path",
                )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _missing_dirs(target: Path, files: dict[str, str]) -> list[str]:
    """Folders inside target that the files need and that do not exist yet, shallowest first."""
    missing: dict[str, None] = {}
    for rel in files:
        parts = PurePosixPath(rel).parts[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in missing and not (target / folder).is_dir():
                missing[folder] = None
    return list(missing)


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


def _appeared(target: Path, rel: str | None = None) -> OutputError:
    what = f"{rel} was created" if rel else "the folder was created"
    return OutputError(
        f"{what} by another program while scaffold was writing; it was left as it is, and"
        " nothing was written",
        where=str(target),
        hint="run again once nothing else writes there",
    )


def _link_new(source: Path, destination: Path, target: Path, rel: str) -> None:
    """Move a staged file in, never over an existing name."""
    try:
        os.link(source, destination)  # unlike a rename, fails if the name exists
    except FileExistsError:
        raise _appeared(target, rel) from None
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(destination):  # no hard links here: check, then rename
            raise _appeared(target, rel) from None
        os.rename(source, destination)
        return
    os.unlink(source)


@dataclass
class _Made:
    """What a live run has really created so far: what a failure must undo."""

    target: bool = False
    dirs: list[str] = field(default_factory=list)


def _move_in(staging: Path, journal: Journal, made: _Made) -> None:
    target = Path(journal.target)
    if journal.made_target:
        try:
            os.mkdir(target)  # the claim: fails if anything else created the folder meanwhile
        except FileExistsError:
            raise _appeared(target) from None
        made.target = True
    for rel in journal.new_dirs:
        try:
            os.mkdir(target / rel)
        except FileExistsError:
            if (target / rel).is_symlink() or not (target / rel).is_dir():
                raise _appeared(target, rel) from None
            continue  # made by someone else meanwhile: theirs, not ours to remove later
        made.dirs.append(rel)
    replaces = set(journal.replaces)
    for rel in journal.files:
        destination = target / rel
        if rel in replaces:
            if destination.is_dir() and not destination.is_symlink():
                raise _appeared(target, rel)  # a folder now, where a file was checked
            aside = staging / OLD / rel
            aside.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(destination, aside)
            except FileNotFoundError:
                pass  # removed since the check: nothing to keep aside
        _link_new(staging / NEW / rel, destination, target, rel)
    for rel in journal.deletes:  # kept aside until the commit, so a crash puts them back
        if not _is_plain_file(target / rel):
            if os.path.lexists(target / rel):
                raise _appeared(target, rel)  # a folder or link now: not the file planned
            continue  # removed since the check
        aside = staging / OLD / rel
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(target / rel, aside)


def _is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _staged(target: Path) -> None:
    """Called after staging, before the first change to the target. Tests stand in another
    program (or a crash) here."""


def _write(
    files: dict[str, str],
    target: Path,
    existed: bool,
    existing: list[str],
    deletes: list[str] | None = None,
    keep_modes: bool = False,
) -> None:
    """Stage, journal, move in, delete. What to replace comes from the checks (`existing`, made
    under the lock), never from a second look: a file that appeared since is not ours to
    replace. `keep_modes`: a replaced file keeps its permissions (update)."""
    replaces = [rel for rel in files if rel in set(existing)]
    new_dirs = _missing_dirs(target, files)
    made_target = not existed
    try:
        staging = Path(tempfile.mkdtemp(prefix=new_staging_prefix(target), dir=target.parent))
    except OSError as err:
        raise OutputError(f"cannot write here ({err.strerror or err})", where=str(target.parent))
    journal = None
    made = _Made()
    try:
        _stage(files, staging / NEW)
        if keep_modes:
            for rel in replaces:
                os.chmod(staging / NEW / rel, os.stat(target / rel).st_mode & 0o7777)
        journal = Journal(
            target=str(target),
            files=list(files),
            inodes={rel: _inode(staging / NEW / rel) for rel in files},
            replaces=replaces,
            new_dirs=new_dirs,
            made_target=made_target,
            deletes=list(deletes or []),
        )
        journal.save(staging)
        _staged(target)
        _move_in(staging, journal, made)
        staging = mark_committed(staging, target)
    except BaseException as err:
        stuck = roll_back(staging, journal, made.dirs, made.target) if journal else []
        if stuck:  # the old copies stay in the staging folder; say where
            raise stuck_error(target, staging, stuck) from err
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError):
            raise OutputError(
                f"could not write the project ({err.strerror or err})", where=str(target)
            ) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _inode(path: Path) -> list[int]:
    info = os.lstat(path)
    return [info.st_dev, info.st_ino]


def resolve_target(target: str | Path) -> Path:
    try:
        return Path(target).expanduser().resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop, an unreadable parent
        raise OutputError(f"cannot resolve the path ({err})", where=str(target))


def write_project(
    files: dict[str, str],
    target: str | Path,
    force: bool = False,
    inputs: dict[str, str] | None = None,
) -> WriteResult:
    """Write files (relative path -> text) into target. `inputs` names files the run reads
    ({"the spec being read": path as the user gave it}); a generated path that is one of them
    is refused."""
    for rel in files:
        _safe_relative(rel)
    target = resolve_target(target)
    check_folder(target)  # before any folder is made
    created = _make_parents(target.parent)
    try:
        with folder_lock(target.parent, target) as locked:
            recovered = recover(target, locked)
            _check_inputs(target, files, inputs or {})
            existed = target.is_dir()
            existing = _check_target(target, force)
            if existing:
                check_write_paths(target, files)
            _write(files, target, existed, existing)
    except BaseException:
        _remove_empty(created)
        raise
    generated = set(files)
    return WriteResult(
        target=target,
        written=sorted(files),
        kept=[rel for rel in existing if rel not in generated],
        replaced=[rel for rel in existing if rel in generated],
        recovered=recovered,
    )


UPDATE_WAY_OUT = "restore it from version control, then run update again"


def update_files(files: dict[str, str], deletes: list[str], target: str | Path) -> list[str]:
    """`scaffold update`'s write into an existing project: write `files` (new or replacing,
    keeping each replaced file's permissions) and delete `deletes`, all or nothing, with
    write_project's lock, journal and recovery, and its --force checks on every path (none may
    leave the project or pass through a link). Returns the recovery notes."""
    target = resolve_target(target)
    with folder_lock(target.parent, target) as locked:
        recovered = recover(target, locked)
        check_write_paths(target, [*files, *deletes], UPDATE_WAY_OUT)
        existing = [rel for rel in files if os.path.lexists(target / rel)]
        gone = [rel for rel in deletes if os.path.lexists(target / rel)]
        _write(files, target, existed=True, existing=existing, deletes=gone, keep_modes=True)
    return recovered


def recover_interrupted(target: str | Path) -> list[str]:
    """Undo (or finish) an interrupted write into target, under the lock, before it is read."""
    target = resolve_target(target)
    with folder_lock(target.parent, target) as locked:
        return recover(target, locked)
