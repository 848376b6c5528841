"""Three-way merge of a project's files: the pristine render (base), the user's tree (ours) and
a new render (theirs). File contents are merged by `git merge-file`, the standard diff3."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch_scaffold.errors import OutputError

LABELS = ("yours", "scaffold before", "scaffold now")  # the conflict markers' names


@dataclass(frozen=True)
class Change:
    path: str
    action: str  # add | update | merge | conflict | delete | kept-deleted | kept-edited
    text: str | None = None  # the file's new content (None: nothing to write, or delete)
    conflicts: int = 0


WRITES = ("add", "update", "merge", "conflict")


def plan(base: dict[str, str], ours: dict[str, str | None], theirs: dict[str, str]) -> list[Change]:
    """What to do with each path scaffold generated before or generates now; paths whose file
    already has the new content are left out."""
    changes = []
    for path in sorted(set(base) | set(theirs)):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t:
            continue  # already what scaffold would write (or gone from both)
        if t is None:  # scaffold no longer generates it (an option switched off)
            if o is not None:
                changes.append(Change(path, "delete") if o == b else Change(path, "kept-edited"))
            continue
        if b is not None and o is None:
            if b != t:
                changes.append(Change(path, "kept-deleted"))  # the user removed it
            continue
        if o is None:
            changes.append(Change(path, "add", t))
        elif o == b:
            changes.append(Change(path, "update", t))
        elif b == t:
            continue  # only the user changed it
        else:
            text, conflicts = merge_text(o, b or "", t)
            changes.append(Change(path, "conflict" if conflicts else "merge", text, conflicts))
    return changes


def merge_text(ours: str, base: str, theirs: str) -> tuple[str, int]:
    """diff3 of three texts: (merged text with conflict markers, number of conflicts)."""
    with tempfile.TemporaryDirectory(prefix="scaffold-merge-") as tmp:
        paths = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        labels = [arg for label in LABELS for arg in ("-L", label)]
        try:
            done = subprocess.run(
                ["git", "merge-file", "-p", *labels, *paths],
                capture_output=True,
                encoding="utf-8",
                check=False,
            )
        except FileNotFoundError:
            raise OutputError(
                "update merges with `git merge-file`, and git is not installed",
                hint="install git, then run scaffold update again",
            ) from None
    if done.returncode < 0 or done.returncode > 127:
        raise OutputError(f"git merge-file failed: {done.stderr.strip()}", hint="report this bug")
    return done.stdout, done.returncode
