"""`scaffold update`: re-render a project with this scaffold and its (changed) spec, then merge
the result three ways into the user's tree (base: the render recorded in .scaffold/)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import click

from torch_scaffold.commands._words import counted
from torch_scaffold.errors import OutputError

SYMBOLS = {
    "add": "A",
    "update": "U",
    "merge": "M",
    "conflict": "C",
    "delete": "D",
    "kept-deleted": "-",
    "kept-edited": "K",
}
MEANINGS = {
    "add": "new file",
    "update": "updated (you had not edited it)",
    "merge": "merged with your edits",
    "conflict": "CONFLICT: overlapping edits, see the <<<<<<< markers",
    "delete": "removed (no longer generated, unedited)",
    "kept-deleted": "kept deleted (you removed it; scaffold's version changed)",
    "kept-edited": "kept (no longer generated, but you edited it)",
}


def run_update(
    folder: str | None,
    *,
    overrides: list[str],
    spec_file: str | None = None,
    dry_run: bool = False,
    show_diff: bool = False,
    allow_dirty: bool = False,
    abort: bool = False,
    reset_overrides: bool = False,
) -> int:
    """Returns the exit code: 0 merged cleanly (or nothing to do), 1 with conflicts."""
    from torch_scaffold import __version__
    from torch_scaffold.generate import render_project
    from torch_scaffold.generate.conflicts import (
        CONFLICTS_FILE,
        conflict_record,
        read_pending,
        refuse_unresolved,
    )
    from torch_scaffold.generate.merge import WRITES, plan
    from torch_scaffold.generate.provenance import Provenance, provenance_files, read_provenance
    from torch_scaffold.generate.write import (
        UPDATE_WAY_OUT,
        check_write_paths,
        recover_interrupted,
        update_files,
    )
    from torch_scaffold.spec import load_spec_text
    from torch_scaffold.spec.overrides import merge_overrides
    from torch_scaffold.spec.source import read_spec_file

    root = Path(folder or ".")
    for note in recover_interrupted(root):  # a killed update is undone before anything is read
        click.echo(f"note: {note}", err=True)
    pending = read_pending(root)
    if abort:
        return _abort(root, pending)
    if pending is not None:
        refuse_unresolved(root, pending)  # markers left: merging them again would bury them
    record = read_provenance(root)
    if spec_file is not None:  # a new spec replaces the recorded one
        spec_text, spec_source = read_spec_file(spec_file), os.path.abspath(spec_file)
    else:
        spec_text, spec_source = _recorded_spec(record)
    earlier = [] if reset_overrides else record.overrides
    _say_what_happens_to(record.overrides, reset_overrides, spec_file)
    all_overrides = merge_overrides(earlier, overrides)
    spec = load_spec_text(spec_text, spec_source, all_overrides)
    theirs = render_project(spec, record.style)
    paths = sorted(set(record.base) | set(theirs))
    links = [path for path in paths if (root / path).is_symlink()]
    # Before anything is read: no path may lead out of the project (nor update write through it)
    check_write_paths(root, [path for path in paths if path not in links], UPDATE_WAY_OUT)
    ours = {path: _read(root, path) for path in paths if path not in links}
    changes = plan(_without(record.base, links), ours, _without(theirs, links))
    # A skipped link keeps its old merge base, so the next update (once it is a file) merges it.
    new_base = {**_without(theirs, links), **_only(record.base, links)}
    new_record = Provenance(
        record.style, spec_text, spec_source, all_overrides, __version__, new_base
    )
    skipped = [path for path in links if record.base.get(path) != theirs.get(path)]
    records = {
        path: text
        for path, text in provenance_files(new_record).items()
        if _read(root, path) != text
    }

    for path in skipped:
        click.echo(
            f"warning: {path} is a symbolic link; scaffold's changes to it were skipped"
            " (update never writes through a link): replace it with a file and run update"
            " again to merge them",
            err=True,
        )
    resolved = [CONFLICTS_FILE] if pending is not None else []  # its conflicts are resolved
    if not changes and not records and not resolved:
        click.echo(f"{root}: up to date (scaffold {__version__}, {record.style} style)")
        return 0
    for change in changes:
        click.echo(f"  {SYMBOLS[change.action]} {change.path}  {MEANINGS[change.action]}")
    if show_diff:
        for change in changes:
            if change.action in WRITES or change.action == "delete":
                _echo_diff(change.path, ours.get(change.path), change.text)
    conflicts = [change.path for change in changes if change.action == "conflict"]
    if dry_run or show_diff:
        click.echo("dry run: nothing written")
        return 1 if conflicts else 0

    touched = [c.path for c in changes if c.action in (*WRITES, "delete")] + list(records)
    if not allow_dirty:
        _refuse_uncommitted(root, touched)
    if resolved:
        click.echo("note: the conflicts of the last update are resolved")
    writes = {c.path: c.text for c in changes if c.action in WRITES}
    deletes = [c.path for c in changes if c.action == "delete"] + resolved
    if conflicts:  # what --abort needs to put the project back as it is now
        before = {path: _read(root, path) for path in touched}
        records[CONFLICTS_FILE] = conflict_record(conflicts, before)
        deletes = [path for path in deletes if path != CONFLICTS_FILE]
    update_files({**writes, **records}, deletes, root)  # all or nothing, journaled like `new`
    written = sum(c.action in (*WRITES, "delete") for c in changes)
    click.echo(f"Updated {counted(written, 'file')} in {root} (scaffold {__version__}).")
    if conflicts:
        have = "has" if len(conflicts) == 1 else "have"
        click.echo(
            f"{counted(len(conflicts), 'file')} {have} conflicts: {', '.join(conflicts)}", err=True
        )
        click.echo(
            "Resolve the <<<<<<< ======= >>>>>>> blocks, then test and commit"
            " (or undo this update: scaffold update --abort).",
            err=True,
        )
        return 1
    return 0


def _abort(root: Path, pending) -> int:
    """Put back every file the conflicting update changed, as it was before that update."""
    from torch_scaffold.generate.conflicts import CONFLICTS_FILE
    from torch_scaffold.generate.write import update_files

    if pending is None:
        raise OutputError(
            "there is no update with conflicts to abort",
            where=str(root),
            hint="--abort undoes an update that left conflicts, until they are resolved",
        )
    writes = {path: text for path, text in pending.before.items() if text is not None}
    deletes = [path for path, text in pending.before.items() if text is None]
    update_files(writes, [*deletes, CONFLICTS_FILE], root)
    click.echo(
        f"Aborted the update: {counted(len(pending.before), 'file')} as before it in {root}."
    )
    return 0


def _recorded_spec(record) -> tuple[str, str]:
    """(spec text, source): the spec file as it is now when it still is where it was read and
    has changed since (the user edited it to update), else the recorded copy."""
    from torch_scaffold.generate.provenance import spec_hash
    from torch_scaffold.spec.source import read_spec_file

    source = record.spec_source
    if source.startswith("<"):  # the default spec or cookiecutter's: there is no file
        return record.spec_text, source
    if not os.path.isfile(source):
        click.echo(
            f"note: the spec file {source} is not there; using the copy recorded in .scaffold/",
            err=True,
        )
        return record.spec_text, source
    text = read_spec_file(source)
    if text != record.spec_text:
        click.echo(
            f"note: {source} changed since it was recorded (sha256"
            f" {spec_hash(record.spec_text)[:12]} -> {spec_hash(text)[:12]}); applying it"
        )
    return text, source


def _say_what_happens_to(overrides: list[str], reset: bool, spec_file: str | None) -> None:
    if overrides and reset:
        click.echo(f"note: dropped the earlier --set overrides: {', '.join(overrides)}")
    elif overrides and spec_file is not None:
        click.echo(
            f"note: the earlier --set overrides still apply on top of {spec_file}:"
            f" {', '.join(overrides)} (--reset-overrides drops them)"
        )


def _read(root: Path, path: str) -> str | None:
    """The file's text; None when absent. A folder or other non-file where scaffold wrote a
    file is refused: update would have to replace it."""
    full = root / path
    if not full.exists():
        return None
    if not full.is_file():
        what = "a folder" if full.is_dir() else "not a regular file"
        raise OutputError(
            f"{path} is {what}, but scaffold generated a file there",
            where=str(root),
            hint=f"move {path} away (or restore the file from version control), then run update"
            " again",
        )
    try:
        return full.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise OutputError(
            f"{path} is not UTF-8 text, but scaffold generated a text file there",
            where=str(root),
            hint=f"move {path} away (or restore the file from version control), then run update"
            " again",
        ) from None
    except OSError as err:
        raise OutputError(f"cannot read {path} ({err.strerror or err})", where=str(root)) from None


def _without(files: dict[str, str], paths: list[str]) -> dict[str, str]:
    return {path: text for path, text in files.items() if path not in paths}


def _only(files: dict[str, str], paths: list[str]) -> dict[str, str]:
    return {path: files[path] for path in paths if path in files}


def _echo_diff(path: str, old: str | None, new: str | None) -> None:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    click.echo("".join(lines), nl=False)


def _refuse_uncommitted(root: Path, paths: list[str]) -> None:
    from torch_scaffold.commands._git import GitError, uncommitted

    try:
        dirty = uncommitted(root, [path for path in paths if os.path.lexists(root / path)])
    except GitError as err:
        click.echo(f"warning: could not ask git for uncommitted changes ({err})", err=True)
        return
    if dirty:
        raise OutputError(
            f"update would change {counted(len(dirty), 'file')} with uncommitted changes:"
            f" {', '.join(dirty)}",
            where=str(root),
            hint="commit or stash them first, so the merge can be reviewed and undone"
            " (git stash -u), or pass --allow-dirty",
        )
