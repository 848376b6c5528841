"""An update that leaves conflicts records what it replaced, in .scaffold/conflicts.json:

    {"files": [the conflicting paths], "before": {path: text before the update, or null}}

While a listed file still holds the markers, the next update refuses (it would merge marker
lines as if they were code); `scaffold update --abort` writes `before` back. The record goes
with the first update after the markers are resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch_scaffold.errors import OutputError, UnresolvedConflicts
from torch_scaffold.generate.merge import LABELS
from torch_scaffold.generate.provenance import FOLDER
from torch_scaffold.generate.write import stays_inside

CONFLICTS_FILE = f"{FOLDER}/conflicts.json"
MARKERS = (f"<<<<<<< {LABELS[0]}", f">>>>>>> {LABELS[2]}")  # as merge.merge_text writes them


@dataclass(frozen=True)
class Pending:
    files: list[str]
    before: dict[str, str | None]


def conflict_record(files: list[str], before: dict[str, str | None]) -> str:
    return json.dumps({"files": files, "before": before}, indent=1, ensure_ascii=False) + "\n"


def read_pending(root: Path) -> Pending | None:
    """The record of the last update's conflicts; None when there is none."""
    path = root / CONFLICTS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files, before = data["files"], data["before"]
        paths = [*files, *before]
        if not all(stays_inside(p) for p in paths) or not all(
            text is None or isinstance(text, str) for text in before.values()
        ):
            raise ValueError("a path outside the project or a text of the wrong type")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise OutputError(
            f"the record of the last update's conflicts is corrupt ({type(err).__name__})",
            where=str(path),
            hint=f"resolve the conflicts by hand, then delete {CONFLICTS_FILE}",
        ) from None
    return Pending(list(files), dict(before))


def with_markers(root: Path, files: list[str]) -> list[str]:
    """The files that still hold a conflict block of scaffold's merge."""
    left = []
    for rel in files:
        try:
            lines = (root / rel).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # gone or replaced: not a file with markers
        if any(line.startswith(MARKERS) for line in lines):
            left.append(rel)
    return left


def refuse_unresolved(root: Path, pending: Pending) -> None:
    left = with_markers(root, pending.files)
    if left:
        raise UnresolvedConflicts(
            f"the last update left conflicts that are not resolved yet: {', '.join(left)}",
            where=str(root),
            hint="resolve the <<<<<<< ======= >>>>>>> blocks and run update again, or undo that"
            " update: scaffold update --abort",
        )
