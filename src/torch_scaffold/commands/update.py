"""`scaffold update`: re-render a project with this scaffold and its (changed) spec, then merge
the result three ways into the user's tree (base: the render recorded in .scaffold/)."""

from __future__ import annotations

import difflib
import os
import tempfile
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
) -> int:
    """Returns the exit code: 0 merged cleanly (or nothing to do), 1 with conflicts."""
    from torch_scaffold import __version__
    from torch_scaffold.generate import render_project
    from torch_scaffold.generate.merge import WRITES, plan
    from torch_scaffold.generate.provenance import Provenance, provenance_files, read_provenance
    from torch_scaffold.spec import load_spec_text
    from torch_scaffold.spec.source import read_spec_file

    root = Path(folder or ".")
    record = read_provenance(root)
    if spec_file is not None:  # a new spec replaces the recorded one and its overrides
        spec_text, spec_source, earlier = read_spec_file(spec_file), os.path.abspath(spec_file), []
    else:
        spec_text, spec_source, earlier = record.spec_text, record.spec_source, record.overrides
    all_overrides = [*earlier, *overrides]
    spec = load_spec_text(spec_text, spec_source, all_overrides)
    theirs = render_project(spec, record.style)
    ours = {path: _read(root / path) for path in set(record.base) | set(theirs)}
    changes = plan(record.base, ours, theirs)
    new_record = Provenance(
        record.style, spec_text, spec_source, all_overrides, __version__, theirs
    )
    records = {
        path: text
        for path, text in provenance_files(new_record).items()
        if _read(root / path) != text
    }

    if not changes and not records:
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
    for change in changes:
        if change.action in WRITES:
            _write_atomically(root / change.path, change.text)
        elif change.action == "delete":
            (root / change.path).unlink()
    for path, text in records.items():
        _write_atomically(root / path, text)
    written = sum(c.action in (*WRITES, "delete") for c in changes)
    click.echo(f"Updated {counted(written, 'file')} in {root} (scaffold {__version__}).")
    if conflicts:
        have = "has" if len(conflicts) == 1 else "have"
        click.echo(
            f"{counted(len(conflicts), 'file')} {have} conflicts: {', '.join(conflicts)}", err=True
        )
        click.echo("Resolve the <<<<<<< ======= >>>>>>> blocks, then test and commit.", err=True)
        return 1
    return 0


def _read(path: Path) -> str | None:
    """The file's text; None when absent. Anything else at that path is the user's business."""
    if path.is_symlink() or not path.exists():
        return None if not path.is_symlink() else f"<symlink {os.readlink(path)}>"
    if not path.is_file():
        return f"<not a file: {path.name}>"
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "<binary file>"


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


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if mode is not None:
            os.chmod(temporary, mode)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
