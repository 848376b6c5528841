"""How much of a script a conversion touches: changed input lines per converted line.

    PYTHONPATH=src python tests/convert/diffsize.py examples/scripts/*.py

For each script: `converted` is the number of input lines inside the regions the report
names (the training loop, inlined functions, the resume block, removed set-up lines);
`changed` is the number of non-blank input lines the output removes or rewrites (a unified
diff's `-` lines); `added` the non-blank output lines that are new. A converter that touches only what it
converts has changed <= converted; whole-file reformatting shows up as changed > converted.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

from torch_scaffold.convert import convert_source

_SPAN = re.compile(r"\(lines (\d+)-(\d+)\)")


def converted_lines(entries) -> set[int]:
    out: set[int] = set()
    for e in entries:
        if e.line is not None:
            out.update(range(e.line, (e.end_line or e.line) + 1))
        for a, b in _SPAN.findall(e.text):
            out.update(range(int(a), int(b) + 1))
    return out


def measure(path: Path) -> tuple[int, int, int, int]:
    source = path.read_text()
    result = convert_source(source, path.name)
    if result.code is None:
        raise SystemExit(f"{path}: not converted: {[e.render() for e in result.entries]}")
    changed = added = 0
    for line in difflib.unified_diff(
        source.splitlines(), result.code.splitlines(), n=0, lineterm=""
    ):
        if not line[1:].strip():
            continue  # blank lines do not count
        if line.startswith("-") and not line.startswith("---"):
            changed += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
    return len(source.splitlines()), len(converted_lines(result.entries)), changed, added


def main(paths: list[str]) -> None:
    total = [0, 0, 0, 0]
    print(f"{'script':<34} {'lines':>5} {'converted':>9} {'changed':>7} {'added':>5} ratio")
    for p in paths:
        row = measure(Path(p))
        total = [t + r for t, r in zip(total, row)]
        print(
            f"{Path(p).stem:<34} {row[0]:>5} {row[1]:>9} {row[2]:>7} {row[3]:>5} {row[2] / row[1]:.2f}"
        )
    print(
        f"{'total':<34} {total[0]:>5} {total[1]:>9} {total[2]:>7} {total[3]:>5} "
        f"{total[2] / total[1]:.2f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
