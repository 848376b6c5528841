"""Jupyter notebooks (nbformat 4 JSON, read with the standard json module) for `scaffold convert`.

The code cells are joined into one Python source, each cell after a marker comment line
(`# %% [scaffold convert: cell N]`), the source is converted like a script, and the result is
split back at the markers into the same cells. Markdown and raw cells, outputs, execution counts
and metadata are kept as they were; only the source of cells whose code changed is replaced.

Where the new code goes follows from the converter: the LightningModule class is emitted just
before the training loop and the comments above the loop (the next cell's marker among them)
stay above the Trainer call, so the class ends the cell before the loop's cell (the one with the
model, data and optimizer set up) and the Trainer call replaces the loop in its own cell. When
the loop's cell is the first code cell, the class opens that cell. `import pytorch_lightning`
joins the cell with the other imports.

IPython syntax is kept out of the Python the converter sees: `%magic`, `!shell`, `x = !cmd`,
`x = %magic`, `obj?` lines become placeholder comments (`pass  # ...` inside a block) and are put
back, as written, after the conversion. A cell that starts with `%%time`, `%%timeit` or
`%%capture` keeps its Python body; any other `%%` cell magic (%%bash, %%writefile, ...) is kept
whole as one placeholder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field

from torch_scaffold.errors import ScriptError

CELL_MARK = "# %% [scaffold convert: cell {n}]"
MAGIC_MARK = "# scaffold convert: IPython line {n}"
_CELL_RE = re.compile(r"^# %% \[scaffold convert: cell (\d+)\]$", re.MULTILINE)
_MAGIC_RE = re.compile(r"^([ \t]*)(?:pass  )?# scaffold convert: IPython line (\d+)$", re.MULTILINE)
_MAGIC_ASSIGN = re.compile(r"^[\w.]+(\s*,\s*[\w.]+)*\s*=\s*[%!]")
_PYTHON_BODY_CELL_MAGICS = {"time", "timeit", "capture"}
STAMP_KEY = "scaffold_convert"
# Jupyter writes some 6 levels; copying and writing back recurse per level, so a deeper
# notebook is refused before anything recurses (a RecursionError would be a traceback).
MAX_DEPTH = 100
_TOO_DEEP = object()


@dataclass
class Notebook:
    data: dict
    source: str  # the code cells joined, IPython lines as placeholders
    magics: list[str] = field(default_factory=list)  # placeholder n -> the original text
    # line of `source` (1-based) -> (cell number, 1-based over all cells; line in the cell)
    lines: dict[int, tuple[int, int]] = field(default_factory=dict)
    cells: dict[int, str] = field(default_factory=dict)  # cell index -> its joined text


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def load(text: str, name: str) -> Notebook:
    """Parse a notebook's JSON; every problem is a ScriptError (exit 2) naming the file."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScriptError(
            f"not a valid notebook: JSON error on line {err.lineno}: {err.msg}",
            where=name,
            hint="pass a Jupyter notebook (.ipynb) saved by Jupyter, or a .py training script",
        ) from None
    except RecursionError:
        data = _TOO_DEEP
    if data is _TOO_DEEP or too_deep(data):
        raise ScriptError(
            f"not a valid notebook: its JSON is nested more than {MAX_DEPTH} levels deep",
            where=name,
            hint="pass a Jupyter notebook (.ipynb) saved by Jupyter, or a .py training script",
        )
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ScriptError(
            "JSON without a 'cells' list: not a Jupyter notebook, not a Python script",
            where=name,
            hint="pass a .py training script or an .ipynb notebook",
        )
    major = data.get("nbformat")
    if isinstance(major, str) and major.strip() == "4":
        line = _key_line(text, "nbformat")
        raise ScriptError(
            f"nbformat: must be the integer 4, not the string {major!r}",
            where=f"{name}:{line}" if line else name,
            hint='write "nbformat": 4 without quotes, or open and save the notebook in Jupyter',
        )
    if major != 4:
        raise ScriptError(
            f"nbformat {major} notebooks are not supported (only nbformat 4)",
            where=name,
            hint="upgrade it: jupyter nbconvert --to notebook --nbformat 4 NOTEBOOK",
        )
    notebook = Notebook(data=data, source="")
    parts: list[str] = []
    line = 0
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        text = _cell_text(cell, name, index)
        code = _hide_ipython(text, notebook.magics)
        if code and not code.endswith("\n"):
            code += "\n"
        notebook.cells[index] = code
        parts.append(CELL_MARK.format(n=index) + "\n")
        line += 1
        for number in range(1, code.count("\n") + 1):
            notebook.lines[line + number] = (index + 1, number)
        line += code.count("\n")
        parts.append(code)
    notebook.source = "".join(parts)
    return notebook


def too_deep(data) -> bool:
    """Whether lists and dicts in `data` nest deeper than MAX_DEPTH (walked without recursion)."""
    level = [data]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def _key_line(text: str, key: str) -> int | None:
    """The line of `"key":` in the JSON text, when it occurs exactly once."""
    found = [m.start() for m in re.finditer(rf'"{re.escape(key)}"\s*:', text)]
    return text.count("\n", 0, found[0]) + 1 if len(found) == 1 else None


def is_code_cell_source(value) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(x, str) for x in value)
    )


def _cell_text(cell: dict, name: str, index: int) -> str:
    value = cell.get("source", "")
    if not is_code_cell_source(value):
        raise ScriptError(
            f"cell {index + 1}: 'source' is neither a string nor a list of strings",
            where=name,
            hint="open and save the notebook in Jupyter to repair it",
        )
    return value if isinstance(value, str) else "".join(value)


def locate(notebook: Notebook, line: int | None) -> str | None:
    """`cell N:L` for a line of the joined source (None when the line is a marker or unknown)."""
    if line is None or line not in notebook.lines:
        return None
    cell, at = notebook.lines[line]
    return f"cell {cell}:{at}"


def restore(code: str, magics: list[str]) -> tuple[str, list[int]]:
    """Put the IPython lines back in place of their placeholders; also the ones not found."""
    seen: set[int] = set()

    def back(match: re.Match) -> str:
        n = int(match.group(2))
        seen.add(n)
        indent = match.group(1)
        first, *rest = magics[n].split("\n")
        return "\n".join([indent + first.lstrip(), *rest])

    text = _MAGIC_RE.sub(back, code)
    return text, [n for n in range(len(magics)) if n not in seen]


def split(notebook: Notebook, code: str) -> dict:
    """The notebook with each code cell's source taken from the converted, joined `code`.

    Raises ValueError when the cell markers did not come through once each and in order (a
    converter bug, reported as an internal error)."""
    marks = list(_CELL_RE.finditer(code))
    order = [int(m.group(1)) for m in marks]
    if order != list(notebook.cells):
        raise ValueError("the notebook's cell markers were lost or reordered in the conversion")
    data = copy.deepcopy(notebook.data)
    head = code[: marks[0].start()] if marks else ""
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(code)
        text = code[mark.end() + 1 : end]
        if i == 0:
            text = head + text
        index = order[i]
        if text == notebook.cells[index]:
            continue
        text, _ = restore(text, notebook.magics)
        original = _cell_text(data["cells"][index], "", index)
        text = text.strip("\n")
        if original.endswith("\n"):
            text += "\n"
        _set_source(data["cells"][index], text)
    return data


def _set_source(cell: dict, text: str) -> None:
    if isinstance(cell.get("source"), list):
        cell["source"] = text.splitlines(keepends=True)
    else:
        cell["source"] = text


def dumps(data: dict, source_name: str) -> str:
    """nbformat's own layout (indent 1, sorted keys, UTF-8), with the provenance stamp in the
    notebook's metadata: where it came from and the sha256 of everything else."""
    stamped_data = copy.deepcopy(data)
    metadata = stamped_data.setdefault("metadata", {})
    metadata.pop(STAMP_KEY, None)
    digest = _digest(stamped_data)
    metadata[STAMP_KEY] = {"from": source_name, "sha256": digest}
    return json.dumps(stamped_data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def _digest(data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def provenance_of(text: str) -> str:
    """ "unedited", "edited" or "foreign" (no stamp) for an existing output notebook's text."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "foreign"
    if too_deep(data):
        return "foreign"
    metadata = data.get("metadata") if isinstance(data, dict) else None
    stamp = metadata.get(STAMP_KEY) if isinstance(metadata, dict) else None
    if not isinstance(stamp, dict) or "sha256" not in stamp:
        return "foreign"
    metadata.pop(STAMP_KEY)
    return "unedited" if _digest(data) == stamp["sha256"] else "edited"


# --- IPython lines ------------------------------------------------------------------------------


def _hide_ipython(text: str, magics: list[str]) -> str:
    lines = text.split("\n")
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic_name = first[2:].split()[0] if first[2:].split() else ""
        if magic_name not in _PYTHON_BODY_CELL_MAGICS:
            return _placeholder(text.rstrip("\n"), "", magics) + (
                "\n" if text.endswith("\n") else ""
            )
        lines[0] = _placeholder(lines[0], "", magics)
        start = 1
    else:
        start = 0
    out = lines[:start]
    scanner = _Scanner()
    i = start
    while i < len(lines):
        line = lines[i]
        if scanner.at_statement_start() and _is_ipython(line):
            block = [line]
            while block[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            indent = line[: len(line) - len(line.lstrip())]
            out.append(_placeholder("\n".join(block), indent, magics))
        else:
            scanner.feed(line)
            out.append(line)
        i += 1
    return "\n".join(out)


def _placeholder(text: str, indent: str, magics: list[str]) -> str:
    magics.append(text)
    mark = MAGIC_MARK.format(n=len(magics) - 1)
    return f"{indent}pass  {mark}" if indent else mark


def _is_ipython(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return False
    if stripped[0] in "%!?":
        return True
    if _MAGIC_ASSIGN.match(stripped):
        return True
    return stripped.endswith("?") and re.fullmatch(r"[\w.\[\]()'\"]+\?\??", stripped) is not None


class _Scanner:
    """Enough of Python's lexer to know whether a line starts a new statement: open brackets,
    open triple-quoted strings and backslash continuations."""

    def __init__(self):
        self.depth = 0
        self.triple: str | None = None
        self.continued = False

    def at_statement_start(self) -> bool:
        return self.depth == 0 and self.triple is None and not self.continued

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.triple:
                end = line.find(self.triple, i)
                if end == -1:
                    break
                i, self.triple = end + 3, None
                continue
            c = line[i]
            if c == "#":
                break
            if c in "\"'":
                if line.startswith(c * 3, i):
                    self.triple = c * 3
                    i += 3
                    continue
                i += 1
                while i < n and line[i] != c:
                    i += 2 if line[i] == "\\" else 1
            elif c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            i += 1
        self.continued = self.triple is None and line.rstrip().endswith("\\")


_LINES_RE = re.compile(r"\b(lines?) (\d+)(?:-(\d+))?(?: and (\d+))?")


def relabel(notebook: Notebook, text: str) -> str:
    """A report text with the joined source's `line N` / `lines N-M` as `cell C, line L`."""

    def place(n: str) -> tuple[int, int] | None:
        return notebook.lines.get(int(n))

    def swap(match: re.Match) -> str:
        first = place(match.group(2))
        if first is None:
            return match.group(0)
        others = [place(n) if n else None for n in (match.group(3), match.group(4))]
        end, also = others
        if match.group(3) and end is not None:
            if end[0] == first[0]:
                return f"cell {first[0]}, lines {first[1]}-{end[1]}"
            return f"cell {first[0]}, line {first[1]} to cell {end[0]}, line {end[1]}"
        head = f"cell {first[0]}, line {first[1]}"
        if match.group(4) and also is not None:
            return f"{head} and cell {also[0]}, line {also[1]}"
        return head

    return _LINES_RE.sub(swap, text)
