"""The largest script the converter takes, and the check (exit 2 from the CLI).

Measured on the synthetic scripts of benchmarks/convert_speed.py (one training loop among
many model and helper definitions, 30 bytes a line), conversion costs about 0.2 ms and
7 KB of peak memory per line, linearly: 100,000 lines (3 MB) take about 20 s of CPU and
0.7 GB. Beyond that a run only gets slower and bigger, and no real training script is
that long; the converter refuses it instead of running for minutes.
"""

from __future__ import annotations

from torch_scaffold.errors import ScriptError

MAX_LINES = 100_000
MAX_BYTES = 4 * 2**20  # UTF-8; a long data literal costs memory by the byte, not the line


def check_size(source: str, filename: str) -> None:
    """Raise ScriptError (exit 2) for a script over MAX_LINES lines or MAX_BYTES bytes."""
    lines = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
    size = len(source) if source.isascii() else len(source.encode("utf-8", "surrogatepass"))
    if lines <= MAX_LINES and size <= MAX_BYTES:
        return
    what = f"{lines:,} lines" if lines > MAX_LINES else f"{size / 2**20:.1f} MiB"
    raise ScriptError(
        f"too large to convert ({what}; the limit is {MAX_LINES:,} lines and"
        f" {MAX_BYTES // 2**20} MiB)",
        where=filename,
        hint="convert the file that holds the training loop on its own, without generated"
        " code or data literals",
    )
