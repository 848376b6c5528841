"""How much of a script a conversion touches: changed input lines per converted line.

    PYTHONPATH=src python tests/convert/diffsize.py examples/scripts/*.py

For each script: `converted` is the number of input lines inside the regions the report
names (the training loop, inlined functions, the resume block, removed set-up lines);
`changed` is the number of non-blank input lines the output removes or rewrites (a unified
diff's `-` lines); `outside` how many of those lie outside the converted regions (touched only to reformat them,
or edited in place: a DistributedSampler, a DDP wrapper); `added` the non-blank new lines. A converter that touches only what it
converts has changed <= converted; whole-file reformatting shows up as changed > converted.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

from torch_scaffold.convert import convert_source

_SPAN = re.compile(r"\(lines (\d+)-(\d+)\)")
_HUNK = re.compile(r"@@ -(\d+)")


def converted_lines(entries) -> set[int]:
    out: set[int] = set()
    for e in entries:
        if e.line is not None:
            out.update(range(e.line, (e.end_line or e.line) + 1))
        for a, b in _SPAN.findall(e.text):
            out.update(range(int(a), int(b) + 1))
    return out


def measure(path: Path) -> tuple[int, int, int, int, int]:
    source = path.read_text()
    result = convert_source(source, path.name)
    if result.code is None:
        raise SystemExit(f"{path}: not converted: {[e.render() for e in result.entries]}")
    regions = converted_lines(result.entries)
    changed = added = outside = 0
    old_line = 0
    for line in difflib.unified_diff(
        source.splitlines(), result.code.splitlines(), n=0, lineterm=""
    ):
        if line.startswith("@@"):
            old_line = int(_HUNK.match(line).group(1)) - 1
            continue
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            old_line += 1
        if not line[1:].strip():
            continue  # blank lines do not count
        if line.startswith("-"):
            changed += 1
            outside += old_line not in regions
        elif line.startswith("+"):
            added += 1
    return len(source.splitlines()), len(regions), changed, outside, added


def main(paths: list[str]) -> None:
    total = [0, 0, 0, 0, 0]
    head = ("script", "lines", "converted", "changed", "outside", "added", "ratio")
    print(
        f"{head[0]:<30} {head[1]:>5} {head[2]:>9} {head[3]:>7} {head[4]:>7} {head[5]:>5} {head[6]}"
    )
    rows = [(Path(p).stem, measure(Path(p))) for p in paths]
    rows.append(("total", None))
    for name, row in rows:
        if row is None:
            row = total
        else:
            total = [t + r for t, r in zip(total, row)]
        print(
            f"{name:<30} {row[0]:>5} {row[1]:>9} {row[2]:>7} {row[3]:>7} {row[4]:>5} "
            f"{row[2] / row[1]:.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
