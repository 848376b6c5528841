"""The journal of one `scaffold new` or `scaffold update` write, so that a killed run is undone
by the next one.

write_project stages the new files in `.<name>.scaffold-<pid>-*` beside the target. Before it
changes anything in the target it saves there a journal: the files it will move in, in order,
with the inode of each staged copy (so that only its own files are ever removed), which of them
replace an existing file (those are moved aside into the staging folder's `old/`), the files it
deletes (`scaffold update`; moved aside into `old/` too, after the moves), and the folders it
will create. Once every file is in place it commits, by renaming its staging folder
to `.<name>.scaffold-done-*` (one atomic step), and then removes it.

A run killed before the commit is rolled back by the next `scaffold new` into the same target:
its own files (same inode) are removed, the old and the deleted files go back, and the folders
it made are removed when empty. A committed run had only its staging folder left; that is removed, whatever
part of it is still there.
Either way the target ends up entirely as before the interrupted run, or entirely as it left
it, never mixed; and no staging folder is left behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from torch_scaffold.errors import OutputError

JOURNAL = "journal.json"
DONE = "done-"  # after the prefix: a committed run's folder, left only to be deleted
NEW = "new"  # the staged files, moved into the target one by one
OLD = "old"  # the files they replace (--force), kept aside until the run is committed


@dataclass
class Journal:
    target: str
    files: list[str]  # in the order they are moved in
    inodes: dict[str, list[int]]  # rel -> [st_dev, st_ino] of the staged copy
    replaces: list[str]  # files that exist in the target and are moved aside first
    new_dirs: list[str]  # folders inside the target to create, shallowest first
    made_target: bool  # the target itself is created by this run
    deletes: list[str] = field(default_factory=list)  # moved aside after the moves, in order

    def save(self, staging: Path) -> None:
        """Written whole, then renamed: a journal on disk is never half written."""
        partial = staging / f"{JOURNAL}.tmp"
        partial.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")
        os.replace(partial, staging / JOURNAL)


def staging_prefix(target: Path) -> str:
    return f".{target.name}.scaffold-"


def new_staging_prefix(target: Path) -> str:
    """The pid in the name tells a live run's folder from a dead one's without opening it."""
    return f"{staging_prefix(target)}{os.getpid()}-"


def mark_committed(staging: Path, target: Path) -> Path:
    """The commit: one rename. Before it, a crash is rolled back; after it, nothing is."""
    prefix = staging_prefix(target)
    done = staging.with_name(f"{prefix}{DONE}{staging.name[len(prefix):]}")
    os.rename(staging, done)
    return done


def roll_back(
    staging: Path,
    journal: Journal,
    made_dirs: list[str] | None = None,
    made_target: bool | None = None,
) -> list[str]:
    """Undo a run: remove its files, put the old and deleted ones back, remove the folders it made when
    they are empty. `made_*` say what a live run really made; a dead run's journal says what it
    planned. Returns the files that could not be put back (their old copies stay in `old/`)."""
    target = Path(journal.target)
    stuck = []
    for rel in reversed(journal.deletes):  # deleted last, so put back first
        _put_back(target / rel, staging / OLD / rel, rel, stuck)
    for rel in reversed(journal.files):
        destination = target / rel
        try:
            if _same_inode(destination, journal.inodes.get(rel)):
                os.unlink(destination)
        except OSError as err:
            stuck.append(f"{rel} ({err.strerror or err})")
            continue
        _put_back(destination, staging / OLD / rel, rel, stuck)
    dirs = journal.new_dirs if made_dirs is None else made_dirs
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        _rmdir_if_empty(target / rel)
    if journal.made_target if made_target is None else made_target:
        _rmdir_if_empty(target)
    return stuck


def _put_back(destination: Path, aside: Path, rel: str, stuck: list[str]) -> None:
    try:
        if not os.path.lexists(aside):
            return  # never moved aside
        if os.path.lexists(destination):  # written there since: not ours to replace
            stuck.append(rel)
            return
        os.rename(aside, destination)
    except OSError as err:
        stuck.append(f"{rel} ({err.strerror or err})")


def recover(target: Path, locked: bool) -> list[str]:
    """Undo or finish every interrupted run into target; returns what was done, for the user.

    `locked`: this process holds the parent folder's lock, so no other run is live. Without
    the lock, a folder whose run is still alive (by its pid) is left alone.
    """
    notes = []
    for staging in _leftovers(target):
        if not locked and _owner_alive(staging, target):
            continue
        if staging.name[len(staging_prefix(target)) :].startswith(DONE):
            shutil.rmtree(staging, ignore_errors=True)
            notes.append(f"removed {staging.name}, left by a run that had finished writing")
            continue
        journal = _load(staging)
        if journal is None:
            _remove_unjournaled(staging, target)
            notes.append(f"removed {staging.name}, left by a run that stopped before writing")
        else:
            stuck = roll_back(staging, journal)
            if stuck:
                raise stuck_error(target, staging, stuck)
            shutil.rmtree(staging, ignore_errors=True)
            notes.append(
                "rolled back an interrupted earlier run: the folder is as it was before that run"
            )
    return notes


def stuck_error(target: Path, staging: Path, stuck: list[str]) -> OutputError:
    return OutputError(
        f"an interrupted write could not be undone: {', '.join(stuck)} changed since it began;"
        f" the files it replaced are kept in {staging / OLD}",
        where=str(target),
        hint=f"compare them, keep what you need, delete {staging}, then run again",
    )


def _leftovers(target: Path) -> list[Path]:
    prefix = staging_prefix(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    found = [target.parent / name for name in sorted(names) if name.startswith(prefix)]
    return [path for path in found if path.is_dir() and not path.is_symlink()]


def _owner_alive(staging: Path, target: Path) -> bool:
    pid_text = staging.name[len(staging_prefix(target)) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return False  # an older scaffold's folder (no pid in the name): no run of it is live
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _load(staging: Path) -> Journal | None:
    try:
        data = json.loads((staging / JOURNAL).read_text(encoding="utf-8"))
        return Journal(**data)
    except (OSError, ValueError, TypeError):
        return None


def _remove_unjournaled(staging: Path, target: Path) -> None:
    """A run without a journal never touched the target: its folder holds only staged copies.
    Anything else in it (an older scaffold kept replaced files there) is not ours to delete."""
    others = []
    for folder, _, names in os.walk(staging):
        for name in names:
            rel = Path(folder, name).relative_to(staging)
            if rel.parts[0] not in (NEW, f"{JOURNAL}.tmp"):
                others.append(rel.as_posix())
    if others:
        raise OutputError(
            f"{staging} was left by an interrupted scaffold run and holds files that may be"
            f" yours: {', '.join(sorted(others))}",
            where=str(target),
            hint=f"move back what you need, delete {staging}, then run again",
        )
    shutil.rmtree(staging, ignore_errors=True)


def _same_inode(path: Path, inode: list[int] | None) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return inode is not None and [info.st_dev, info.st_ino] == list(inode)


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # fails on a folder that holds anything: never removes other files
    except OSError:
        pass
