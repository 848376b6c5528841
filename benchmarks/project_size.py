"""Lines of package Python in generated projects, per style and per example spec.

    python benchmarks/project_size.py [--no-save] [--spec NAME ...]

Renders the default spec and every spec in examples/specs/ in both styles (into a temporary
folder) and counts the lines of the project's package: every `.py` file under the package
folder, tests and scripts left out, because the package is the code a team owns and
maintains. "code" counts the lines that are not blank and not comment-only. Writes the
table into the "Project size" section of benchmarks/results.md; targets (issue 20): at most
1,200 lines for the default spec and 1,800 for the largest example spec, in each style.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.md"
SECTION = "## Project size (benchmarks/project_size.py)"
STYLES = ("pytorch", "lightning")
DEFAULT_TARGET = 1200
LARGEST_TARGET = 1800


def package_lines(project: Path) -> tuple[int, int, int]:
    """(files, lines, code lines) of the package folder: the one folder with __init__.py."""
    packages = [p.parent for p in project.glob("*/__init__.py")]
    if len(packages) != 1:
        raise SystemExit(f"error: {project}: expected one package folder, found {packages}")
    files = lines = code = 0
    for path in sorted(packages[0].rglob("*.py")):
        text = path.read_text(encoding="utf-8").splitlines()
        files += 1
        lines += len(text)
        code += sum(1 for line in text if line.strip() and not line.strip().startswith("#"))
    return files, lines, code


def measure(spec: Path | None, style: str, workdir: Path) -> tuple[int, int, int]:
    out = workdir / f"{spec.stem if spec else 'default'}-{style}"
    args = [sys.executable, "-m", "torch_scaffold", "new", "--style", style, "-o", str(out)]
    if spec is not None:
        args.append(str(spec))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(args, check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args[2:])} exited {done.returncode}: {done.stderr}")
    return package_lines(out)


def table(rows: list[tuple[str, dict[str, tuple[int, int, int]]]]) -> list[str]:
    largest = {s: max(r[1][s][1] for r in rows if r[0] != "default") for s in STYLES}
    lines = [
        "| spec | " + " | ".join(f"{s} lines (code, files)" for s in STYLES) + " | target |",
        "| --- " * (len(STYLES) + 2) + "|",
    ]
    for name, sizes in rows:
        target = ""
        if name == "default":
            target = f"<= {DEFAULT_TARGET}"
        elif any(sizes[s][1] == largest[s] for s in STYLES):
            target = f"<= {LARGEST_TARGET} (largest)"
        cells = [f"{sizes[s][1]} ({sizes[s][2]}, {sizes[s][0]})" for s in STYLES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {target} |")
    return lines


def save(lines: list[str]) -> None:
    """Replace the section (or append it) in results.md, leaving every other section alone."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    before, found, after = text.partition(SECTION)
    tail = ("\n## " + after.split("\n## ", 1)[1]) if found and "\n## " in after else ""
    body = [
        SECTION,
        "",
        (
            "Lines of package Python (tests and scripts left out) of each generated project;"
            f" code = not blank, not comment-only. Measured {datetime.date.today()}."
        ),
        "",
        *lines,
    ]
    RESULTS.write_text(
        before.rstrip("\n") + "\n\n" + "\n".join(body) + "\n" + tail, encoding="utf-8"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--spec", action="append", default=[], help="only these example specs")
    args = parser.parse_args()
    specs = sorted((REPO / "examples" / "specs").glob("*.yaml"))
    if args.spec:
        specs = [s for s in specs if s.stem in args.spec]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in [None, *specs]:
            sizes = {style: measure(spec, style, Path(tmp)) for style in STYLES}
            rows.append((spec.stem if spec else "default", sizes))
    lines = table(rows)
    print("\n".join(lines))
    if not args.no_save:
        save(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
