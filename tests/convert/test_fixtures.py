"""Fixture pairs, one folder per rule: tests/fixtures/convert/<rule>/<case>.in.py ->

    <case>.out.py        the exact converted code, or
    <case>.refused.txt   the conversion is refused; each non-empty line of the file must appear
                         in the text of some refusal entry.

Adding a case means adding two files; nothing here needs to change.
"""

from __future__ import annotations

import pytest

from .conftest import FIXTURES

IN_SUFFIX = ".in.py"


def _cases():
    if not FIXTURES.is_dir():
        return []
    return sorted(FIXTURES.glob(f"*/*{IN_SUFFIX}"))


def _case_id(path):
    """tests/fixtures/convert/<rule>/<case>.in.py (or .out.py) -> "<rule>/<case>"."""
    return f"{path.parent.name}/{path.name.split('.')[0]}"


def _sibling(path, suffix):
    return path.with_name(path.name[: -len(IN_SUFFIX)] + suffix)


CASES = _cases()
OUTPUTS = sorted(FIXTURES.glob("*/*.out.py")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_fixture_converts_as_expected(case):
    from torch_scaffold.convert import convert_source

    expected_code = _sibling(case, ".out.py")
    expected_refusal = _sibling(case, ".refused.txt")
    assert (
        expected_code.exists() != expected_refusal.exists()
    ), f"{_case_id(case)} needs exactly one of {expected_code.name} or {expected_refusal.name}"

    result = convert_source(case.read_text(), _case_id(case) + IN_SUFFIX)

    if expected_code.exists():
        assert not result.refused, [e.text for e in result.refusals]
        assert result.code == expected_code.read_text()
    else:
        assert result.refused, f"expected a refusal, got:\n{result.code}"
        assert result.code is None
        reasons = [e.text for e in result.refusals]
        for wanted in filter(None, map(str.strip, expected_refusal.read_text().splitlines())):
            assert any(wanted in reason for reason in reasons), (wanted, reasons)


@pytest.mark.parametrize("expected", OUTPUTS, ids=[_case_id(p) for p in OUTPUTS])
def test_expected_output_compiles_and_its_new_class_is_black_formatted(expected):
    """Only emitted code is formatted (black's defaults: no pyproject.toml is looked up for a
    source string); the script's own lines keep their formatting."""
    import black
    import libcst as cst

    code = expected.read_text()
    compile(code, str(expected), "exec")
    module = cst.parse_module(code)
    classes = [
        s
        for s in module.body
        if isinstance(s, cst.ClassDef) and "LightningModule" in module.code_for_node(s)[:200]
    ]
    assert classes, f"{expected}: no LightningModule"
    for cls in classes:
        text = cst.Module([cls.with_changes(leading_lines=[])]).code
        assert black.format_str(text, mode=black.Mode()) == text, f"{expected}: not formatted"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_own_line_comments_survive(case):
    """Every comment on a line of its own in the input is somewhere in the output."""
    from torch_scaffold.convert import convert_source

    result = convert_source(case.read_text(), _case_id(case) + IN_SUFFIX)
    if result.code is None:
        return
    missing = own_line_comments(case.read_text()) - own_line_comments(result.code)
    assert not missing, missing


def own_line_comments(code: str):
    import collections
    import io
    import tokenize

    out = collections.Counter()
    lines = code.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and not lines[tok.start[0] - 1][: tok.start[1]].strip():
            out[tok.string] += 1
    return out
