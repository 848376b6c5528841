"""What a conversion returns: the new source and a report of every decision.

This is the seam between the converter core (pure: source -> Conversion) and
the `scaffold convert` command (reads/writes files, prints the report, picks
the exit code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Report entry kinds, in the order the report prints them.
MOVED = "moved"  # user code moved into a Lightning hook / Trainer flag
REMOVED = "removed"  # boilerplate Lightning does for us (zero_grad, .to(device), ...)
KEPT = "kept"  # left unchanged on purpose (argparse, data code, model classes)
TODO = "todo"  # kept, with a `# TODO(scaffold): ...` marker for the user
REFUSED = "refused"  # cannot be converted safely; blocks the conversion unless --partial
INTERNAL = "internal error"  # a bug of the converter, never a verdict on the script
KINDS = (MOVED, REMOVED, KEPT, TODO, REFUSED, INTERNAL)


@dataclass(frozen=True)
class ReportEntry:
    kind: str
    text: str  # e.g. "train() loop (lines 40-58) -> training_step"
    line: int | None = None  # first line in the INPUT the entry is about
    end_line: int | None = None

    def render(self) -> str:
        return f"{self.kind}: {self.text}"


@dataclass
class Conversion:
    """The outcome of converting one script.

    code is the converted source (the emitted code formatted, every other line as it was);
    None when the conversion was refused and partial output was not asked for, when the
    converter failed (an INTERNAL entry: a bug, not a refusal), or when the script already
    uses Lightning (already_lightning=True, nothing to do).
    """

    code: str | None
    entries: list[ReportEntry] = field(default_factory=list)
    already_lightning: bool = False

    @property
    def refusals(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.kind == REFUSED]

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @property
    def internal_errors(self) -> list[ReportEntry]:
        return [e for e in self.entries if e.kind == INTERNAL]
