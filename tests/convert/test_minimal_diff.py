"""A conversion changes only what it converts: every other line stays byte for byte, and only
the emitted code is formatted (with the project's own black/ruff line length)."""

from __future__ import annotations

import difflib
import textwrap

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.convert import convert_source
from torch_scaffold.convert.style import DEFAULT, Style, find_style

from .conftest import EXAMPLES

ODD = '''\
"""A docstring that black would keep, but with   odd   spacing inside.

It spans lines.
"""
import torch
from torch import nn
from torch.utils.data import DataLoader,TensorDataset   # no space after the comma


def helper( x ,y ):
    # a helper nobody formats
    return x+y


LONG_LINE_CONSTANT = {"alpha": 1, "beta": 2, "gamma": 3, "delta": 4, "epsilon": 5, "zeta": 6, "eta": 7}
data = TensorDataset(torch.randn(16, 4),
                     torch.randn(16, 1))
loader = DataLoader(data, batch_size = 4)
model = nn.Linear(4,1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
print( 'done' ,helper(1,2) )
if True :
    summary = [ 1,
        2 ]
'''

LOOP_LINES = range(21, 27)  # lines of ODD that the Trainer call replaces (1-based)
OPTIMIZER_LINE = 20  # `opt = ...`: built in configure_optimizers now, so converted code too


def _untouched(source: str) -> list[str]:
    lines = source.splitlines(keepends=True)
    return [line for i, line in enumerate(lines, 1) if i not in LOOP_LINES and i != OPTIMIZER_LINE]


def test_untouched_region_survives_byte_for_byte():
    result = convert_source(ODD, "odd.py")
    assert result.code is not None, [e.render() for e in result.entries]
    out = result.code.splitlines(keepends=True)
    # every input line outside the loop appears in the output, unchanged and in order
    matcher = difflib.SequenceMatcher(a=_untouched(ODD), b=out, autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks())
    assert kept == len(_untouched(ODD)), "".join(
        difflib.unified_diff(ODD.splitlines(True), out, "in", "out")
    )
    # and the only removed lines are the loop's and the optimizer's
    removed = [
        line[1:]
        for line in difflib.unified_diff(ODD.splitlines(True), out, n=0)
        if line.startswith("-") and not line.startswith("---")
    ]
    assert removed == ODD.splitlines(True)[OPTIMIZER_LINE - 1 : LOOP_LINES.stop - 1]


def test_only_emitted_code_is_formatted():
    code = convert_source(ODD, "odd.py").code
    assert "LONG_LINE_CONSTANT = {" in code and max(map(len, code.splitlines())) > 88
    assert "class LitModel(pl.LightningModule):" in code
    emitted = code[code.index("class LitModel") :]
    emitted = emitted[: emitted.index("print( 'done'")]
    assert all(len(line) <= 88 for line in emitted.splitlines())


@pytest.mark.parametrize("length", [60, 200])
def test_emitted_code_follows_the_given_line_length(length):
    code = convert_source(ODD, "odd.py", style=Style(line_length=length)).code
    trainer = next(line for line in code.splitlines() if "pl.Trainer(" in line)
    if length == 200:
        assert trainer.endswith(")")  # one line: it fits in 200
    else:
        assert trainer.endswith("(")  # wrapped at 60
    emitted = code[code.index("class LitModel") : code.index("print( 'done'")]
    # black never splits a docstring; everything else fits
    assert all(len(line) <= length for line in emitted.splitlines() if '"""' not in line)


def test_trainer_call_in_a_function_is_formatted_for_its_indentation():
    lines = ODD.splitlines(keepends=True)
    loop = "".join("  " + line for line in lines[LOOP_LINES.start - 1 : LOOP_LINES.stop - 1])
    src = "".join(lines[: LOOP_LINES.start - 1]) + "def main():\n" + loop + "\n\nmain()\n"
    code = convert_source(src, "odd.py", style=Style(line_length=60)).code
    compile(code, "out.py", "exec")
    body = code[code.index("def main():") :]
    assert "  trainer = pl.Trainer(\n" in body  # 2-space block: black's 4 inside the call
    assert all(len(line) <= 60 for line in body.splitlines()), body


# --- the project's settings -----------------------------------------------------------------


def _project(tmp_path, toml: str | None, sub="src/pkg"):
    if toml is not None:
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent(toml))
    folder = tmp_path / sub
    folder.mkdir(parents=True)
    return folder / "train.py"


def test_style_from_black_table(tmp_path):
    script = _project(
        tmp_path,
        """
        [tool.black]
        line-length = 100
        skip-string-normalization = true
        """,
    )
    style = find_style(script)
    assert style.line_length == 100 and not style.string_normalization
    assert style.source == str(tmp_path / "pyproject.toml")


def test_style_from_ruff_table(tmp_path):
    script = _project(tmp_path, "[tool.ruff]\nline-length = 110\n")
    assert find_style(script).line_length == 110


def test_black_wins_over_ruff(tmp_path):
    script = _project(tmp_path, "[tool.ruff]\nline-length = 110\n[tool.black]\nline-length = 99\n")
    assert find_style(script).line_length == 99


def test_pyproject_without_formatter_settings_is_skipped(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 77\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_style(inner / "train.py").line_length == 77


def test_search_stops_at_the_repository_root(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 77\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_style(repo / "train.py") == DEFAULT


def test_broken_pyproject_gives_the_defaults(tmp_path):
    script = _project(tmp_path, "[tool.black\nline-length = = 3\n")
    assert find_style(script) == DEFAULT


def test_cli_uses_the_projects_line_length(tmp_path):
    script = _project(tmp_path, "[tool.black]\nline-length = 120\n", sub="proj")
    script.write_text(ODD)
    result = CliRunner().invoke(main, ["convert", str(script), "--stdout"])
    assert result.exit_code == 0, result.output
    code = result.stdout
    assert "        return self.model(*args, **kwargs)" in code
    long_ = [line for line in code.splitlines() if len(line) > 88 and "LONG_LINE" not in line]
    assert long_ == [], long_  # nothing emitted needed more than 88 columns here
    # and with 40 columns black wraps what it can
    (script.parent.parent / "pyproject.toml").write_text("[tool.ruff]\nline-length = 40\n")
    result = CliRunner().invoke(main, ["convert", str(script), "--stdout"])
    assert "trainer = pl.Trainer(\n" in result.stdout


# --- the size of the change on the example scripts ------------------------------------------


def changed_lines(before: str, after: str) -> tuple[int, int]:
    """(input lines removed or changed, output lines added) by a conversion."""
    removed = added = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""):
        if line.startswith("-") and not line.startswith("---"):
            removed += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
    return removed, added


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_examples_change_only_converted_lines(path):
    """Every removed input line lies in the converted regions the report names (the loop,
    inlined functions, removed set-up statements): no line is touched for formatting."""
    import libcst as cst

    source = path.read_text()
    result = convert_source(source, path.name)
    assert result.code is not None
    module = cst.parse_module(result.code)
    assert module.code == result.code
    removed = [
        line[1:]
        for line in difflib.unified_diff(source.splitlines(), result.code.splitlines(), n=0)
        if line.startswith("-") and not line.startswith("---")
    ]
    spans = [(e.line, e.end_line or e.line) for e in result.entries if e.line is not None]
    spans += [
        tuple(map(int, e.text.split("(lines ")[1].split(")")[0].split("-")))
        for e in result.entries
        if "(lines " in e.text
    ]
    lines = source.splitlines()
    for text in removed:
        numbers = [i for i, line in enumerate(lines, 1) if line == text]
        assert any(a <= n <= b for n in numbers for a, b in spans) or not text.strip(), text


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.stem)
def test_no_line_outside_the_converted_regions_changes(path):
    from .diffsize import measure

    _lines, converted, changed, outside, _added = measure(path)
    assert outside == 0 and changed <= converted, (converted, changed, outside)
