"""`scaffold convert` replaces an existing output only when it is its own, unedited result.

Catalogue: each case is an existing output (what is there before), the flags, the exit code,
the exact first stderr line, and whether the output is replaced or kept byte for byte. The
converter core is a stand-in (the real one is not what is tested here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import torch_scaffold.convert as convert_pkg
from torch_scaffold.cli import main
from torch_scaffold.commands._stamp import EDITED, FOREIGN, UNEDITED, provenance, stamped
from torch_scaffold.convert.result import Conversion

SCRIPT = "import torch\nfor epoch in range(2):\n    loss.backward()\n"


@pytest.fixture(autouse=True)
def fake_core(monkeypatch):
    monkeypatch.setattr(
        convert_pkg,
        "convert_source",
        lambda source, name="<stdin>", partial=False: Conversion(code=f"# converted\n{source}"),
    )


def convert(*args: str):
    result = CliRunner().invoke(main, ["convert", *args])
    assert "Traceback" not in result.output
    return result


def _nothing(folder: Path) -> None:
    pass


def _unrelated(folder: Path) -> None:
    (folder / "data.py").write_text("DATA = [1, 2, 3]\n")


def _earlier_result(folder: Path) -> None:
    assert convert("train.py", "-o", "data.py").exit_code == 0


def _earlier_result_edited(folder: Path) -> None:
    _earlier_result(folder)
    text = (folder / "data.py").read_text()
    (folder / "data.py").write_text(text.replace("# converted", "# converted, then tuned"))


def _earlier_result_appended(folder: Path) -> None:
    _earlier_result(folder)
    with open(folder / "data.py", "a") as handle:
        handle.write("print('my addition')\n")


def _earlier_result_stamp_removed(folder: Path) -> None:
    _earlier_result(folder)
    lines = (folder / "data.py").read_text().splitlines(keepends=True)
    (folder / "data.py").write_text("".join(lines[:-1]))


def _older_scaffold_result(folder: Path) -> None:  # before stamps existed
    (folder / "data.py").write_text(f"# converted\n{SCRIPT}")


def _empty(folder: Path) -> None:
    (folder / "data.py").write_text("")


@dataclass(frozen=True)
class Case:
    name: str
    before: Callable[[Path], None]  # what exists at -o data.py
    flags: tuple[str, ...]
    exit_code: int
    first_line: str  # stderr's first line ("" for none)
    replaced: bool  # data.py holds the new result afterwards (else: unchanged)


NOT_OURS = (
    "error: data.py: exists and was not written by scaffold convert; refusing to overwrite it"
)
EDITED_LINE = (
    "error: data.py: was edited since scaffold convert wrote it; refusing to overwrite the edits"
)

CASES = [
    Case("no-output-yet", _nothing, (), 0, "", True),
    Case("unrelated-file", _unrelated, (), 2, NOT_OURS, False),
    Case("unrelated-file-force", _unrelated, ("--force",), 0, "", True),
    Case("earlier-result-unedited", _earlier_result, (), 0, "", True),
    Case("earlier-result-edited", _earlier_result_edited, (), 2, EDITED_LINE, False),
    Case("earlier-result-appended-to", _earlier_result_appended, (), 2, EDITED_LINE, False),
    Case("earlier-result-edited-force", _earlier_result_edited, ("--force",), 0, "", True),
    Case("stamp-line-removed", _earlier_result_stamp_removed, (), 2, NOT_OURS, False),
    Case("older-scaffold-result-no-stamp", _older_scaffold_result, (), 2, NOT_OURS, False),
    Case("empty-file", _empty, (), 2, NOT_OURS, False),
    Case("unrelated-file-diff-writes-nothing", _unrelated, ("--diff",), 0, "", False),
    Case("unrelated-file-check-writes-nothing", _unrelated, ("--check",), 1, "", False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_existing_output(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("train.py").write_text(SCRIPT + "# v2\n")
    case.before(tmp_path)
    before = Path("data.py").read_bytes() if Path("data.py").exists() else None
    result = convert("train.py", "-o", "data.py", *case.flags)
    assert result.exit_code == case.exit_code, result.output
    lines = result.stderr.splitlines()
    first = lines[0] if lines and case.exit_code == 2 else ""
    assert first == case.first_line
    if case.exit_code == 2:
        assert lines[1] == "hint: pass --force to replace it anyway, or give -o another file"
    if case.replaced:
        assert provenance(Path("data.py"), 10**6) == UNEDITED
        assert "# v2" in Path("data.py").read_text()
    else:
        assert (Path("data.py").read_bytes() if before is not None else None) == before


def test_rerunning_over_the_default_output_is_allowed_until_it_is_edited(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "train_lightning.py"
    assert convert(str(script)).exit_code == 0
    assert convert(str(script)).exit_code == 0  # its own unedited result
    out.write_text(out.read_text() + "# my tweak\n")
    result = convert(str(script))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {out}: was edited since scaffold convert wrote it")
    assert out.read_text().endswith("# my tweak\n")


# --- the stamp itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, encoding",
    [
        ("x = 1\n", "utf-8"),
        ("x = 1", "utf-8"),  # no final newline: one is added before the stamp
        ("#!/usr/bin/env python\n# -*- coding: latin-1 -*-\nname = 'café'\n", "latin-1"),
        ("x = 1\r\ny = 2\r\n", "utf-8"),  # CRLF kept, the stamp line too
    ],
    ids=["plain", "no-final-newline", "shebang-and-latin-1", "crlf"],
)
def test_stamp_round_trip(code, encoding, tmp_path):
    path = tmp_path / "out.py"
    text = stamped(code, "dir/train.py", encoding)
    path.write_bytes(text.encode(encoding))
    assert provenance(path, 10**6) == UNEDITED
    assert text.startswith(code)  # the stamp is the last line: line 1 and 2 keep their places
    assert text.splitlines()[-1].startswith("# scaffold convert: from train.py; sha256 of ")
    path.write_bytes(text.replace("1", "2", 1).encode(encoding))
    assert provenance(path, 10**6) == EDITED


def test_a_non_ascii_script_name_is_stamped_in_ascii(tmp_path):
    text = stamped("x = 'caf\xe9'\n", "d\xe9j\xe0.py", "latin-1")
    assert text.splitlines()[-1].startswith("# scaffold convert: from d\\xe9j\\xe0.py; ")
    path = tmp_path / "out.py"
    path.write_bytes(text.encode("latin-1"))
    assert provenance(path, 10**6) == UNEDITED


def test_a_file_without_a_stamp_is_foreign(tmp_path):
    path = tmp_path / "out.py"
    path.write_text("x = 1\n# scaffold convert: from t.py; sha256 of the lines above: nothex\n")
    assert provenance(path, 10**6) == FOREIGN
