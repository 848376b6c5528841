"""Formatting the output and summarising the decisions."""

from __future__ import annotations

from torch_scaffold.convert.result import KEPT, KINDS, REMOVED, ReportEntry


def partial_code(source: str, entries: list[ReportEntry]) -> str:
    """The original script with a `# TODO(scaffold): ...` marker above each refused line."""
    lines = source.splitlines(keepends=True)
    marks: dict[int, list[str]] = {}
    for e in entries:
        marks.setdefault(e.line or 1, []).append(e.text)
    out = []
    for i, line in enumerate(lines, start=1):
        for text in marks.get(i, []):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# TODO(scaffold): {text}\n")
        out.append(line)
    if not lines:
        out = [f"# TODO(scaffold): {t}\n" for ts in marks.values() for t in ts]
    return "".join(out)


def finish(ctx) -> list[ReportEntry]:
    entries = list(ctx.entries)
    if ctx.removed_counts:
        parts = [f"{n} {what}" if n > 1 else what for what, n in ctx.removed_counts.items()]
        entries.append(ReportEntry(REMOVED, ", ".join(parts)))
    entries.append(
        ReportEntry(
            KEPT,
            "every line outside the converted regions, as written (imports, comments, "
            "argument parsing, data code, model classes, helper functions)",
        )
    )
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(entries, key=lambda e: order.get(e.kind, 99))
