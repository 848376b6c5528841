"""Every malformed spec in tests/bad_specs/ fails through the real CLI with its expected message.

A case is two files: `NN-name.yaml` (the spec) and `NN-name.expected` (the exact stderr:
an `error:` line and a `hint:` line for each problem; a spec with several independent
problems gets them all, in file order). Adding a case means adding the two files. Inputs that
are too large or too odd to commit (50 MB, megabytes of binary, a full billion-laughs bomb)
are built at run time below.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main

CATALOGUE = Path(__file__).resolve().parents[1] / "bad_specs"
CASES = sorted(p.name for p in CATALOGUE.glob("*.yaml"))
HAS_NEW = importlib.util.find_spec("torch_scaffold.commands.new") is not None


def run_cli(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result


def assert_clear_errors(result, count: int) -> list[str]:
    """Exit 2, nothing on stdout, `count` `error:` lines, each followed by at most one
    `hint:` line, and nothing else."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(len(line) < 300 for line in lines), "messages stay short, even for huge values"
    assert lines[0].startswith("error: ")
    assert sum(line.startswith("error: ") for line in lines) == count, lines
    for before, line in itertools.pairwise(lines):
        assert line.startswith("error: ") or (
            line.startswith("hint: ") and before.startswith("error: ")
        ), lines
    return lines


def assert_one_clear_error(result, expected_error: str | None = None) -> list[str]:
    """Exit 2, nothing on stdout, exactly one `error:` line, optionally one `hint:` line."""
    lines = assert_clear_errors(result, 1)
    if expected_error is not None:
        assert expected_error in lines[0]
    return lines


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("error: ")]


# What issue 5 asks the catalogue to cover, and a committed case for each.
COVERAGE = {
    "YAML syntax errors": ["01-syntax-unclosed-bracket", "02-syntax-tab-indent"],
    "wrong types": ["31-epochs-text", "32-batch-size-bool", "34-hidden-sizes-scalar"],
    "unknown keys and typos": ["20-unknown-top-level-typo", "21-unknown-nested-typo"],
    "missing required fields": ["24-missing-name"],
    "negative or zero sizes, rates, epochs": ["40-lr-negative", "41-lr-zero", "42-epochs-zero"],
    "absurd values": ["45-absurd-hidden-size", "47-absurd-layer-count", "48-absurd-epochs"],
    "unknown optimizer, scheduler, loss": ["57-optimizer-unknown", "58-scheduler-unknown"],
    "conflicting options": ["68-loss-task-conflict", "77-fp16-on-cpu"],
    "empty file": ["09-empty-file"],
    "binary file": ["84-binary-file"],
    "non-UTF-8 text": ["85-latin1-text", "86-utf16-text"],
    "billion laughs": ["12-billion-laughs"],
    "python object tags": ["13-python-object-tag"],
    "several errors in one file": [
        "90-three-independent-errors",
        "91-unknown-key-and-range",
        "94-two-bad-list-items-and-missing-name",
        "95-two-conflicts",
    ],
    "an invalid field does not cascade into a rule error": [
        "92-type-error-no-cascade",
        "93-choice-error-and-conflict",
    ],
    "a conflict does not cascade into later rules": ["96-conflict-no-cascade"],
}


def test_catalogue_is_large_and_complete():
    assert len(CASES) >= 40
    for name in CASES:
        assert (CATALOGUE / name).with_suffix(".expected").is_file(), f"{name} has no .expected"
    for kind, names in COVERAGE.items():
        for name in names:
            assert f"{name}.yaml" in CASES, f"{kind}: {name}.yaml is missing"


@pytest.mark.parametrize("name", CASES)
def test_spec_check_reports_expected_message(name, monkeypatch):
    monkeypatch.chdir(CATALOGUE)  # messages then name the file as the user typed it
    expected = (CATALOGUE / name).with_suffix(".expected").read_text("utf-8").splitlines()
    result = run_cli(["spec", "check", name])
    lines = assert_clear_errors(result, len(error_lines(expected)))
    assert lines == expected


@pytest.mark.skipif(not HAS_NEW, reason="scaffold new lives on the generator branch")
@pytest.mark.parametrize("name", CASES)
def test_new_refuses_bad_spec_and_writes_nothing(name, monkeypatch, tmp_path):
    monkeypatch.chdir(CATALOGUE)
    expected = (CATALOGUE / name).with_suffix(".expected").read_text("utf-8").splitlines()
    target = tmp_path / "out"
    result = run_cli(["new", name, "--style", "pytorch", "-o", str(target)])
    lines = assert_clear_errors(result, len(error_lines(expected)))
    assert error_lines(lines) == error_lines(expected)
    assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == []


# --- cases built at run time ---------------------------------------------------------------


def _billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, levels + 1):
        refs = ",".join([f"*lol{i - 1}"] * 10)
        lines.append(f"lol{i}: &lol{i} [{refs}]")
    return "\n".join(lines) + "\nname: *lol9\n"


def _generated_cases(tmp: Path) -> dict[str, tuple[bytes | None, str]]:
    """file name -> (content, expected substring of the error line)."""
    rng = random.Random(5)
    return {
        "fifty-megabytes.yaml": (
            None,
            "file is too large (52,428,800 bytes; a spec may be at most",
        ),
        "random-binary.yaml": (rng.randbytes(3_000) + b"\x00", "file is binary (contains NUL"),
        "random-not-utf8.yaml": (
            b"name: demo\ndescription: " + bytes(rng.randrange(0x80, 0xC0) for _ in range(50)),
            "random-not-utf8.yaml:2: file is not valid UTF-8",
        ),
        "billion-laughs-full.yaml": (
            _billion_laughs().encode(),
            "billion-laughs-full.yaml:1: YAML anchors are not allowed in a spec (found &lol0)",
        ),
        "aliases-only.yaml": (
            b"name: demo\nmodel: *undefined\n",
            "aliases-only.yaml:2: YAML aliases are not allowed in a spec (found *undefined)",
        ),
        "deep-nesting-100k.yaml": (
            b"name: demo\nmodel: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
            # libyaml stops this itself ("exceeded maximum nesting depth"); either way: line 2
            "deep-nesting-100k.yaml:2",
        ),
        "just-under-limit-but-junk.yaml": (
            b"name: demo\n" + b"# padding\n" * 99_000 + b"model: [1, 2\n",
            "invalid YAML",
        ),
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("generated_bad_specs")
    cases = _generated_cases(folder)
    for name, (content, _) in cases.items():
        path = folder / name
        if content is None:  # sparse 50 MB file: refused from its size, never read
            with open(path, "wb") as handle:
                handle.truncate(50 * 1024 * 1024)
        else:
            path.write_bytes(content)
    return folder, cases


GENERATED_NAMES = sorted(_generated_cases(Path(".")))


@pytest.mark.parametrize("name", GENERATED_NAMES)
def test_generated_bad_input_fails_cleanly(name, generated, monkeypatch):
    folder, cases = generated
    monkeypatch.chdir(folder)
    result = run_cli(["spec", "check", name])
    assert_one_clear_error(result, cases[name][1])


@pytest.mark.skipif(not HAS_NEW, reason="scaffold new lives on the generator branch")
@pytest.mark.parametrize("name", GENERATED_NAMES)
def test_new_refuses_generated_bad_input(name, generated, monkeypatch, tmp_path):
    folder, cases = generated
    monkeypatch.chdir(folder)
    target = tmp_path / "out"
    result = run_cli(["new", name, "--style", "lightning", "-o", str(target)])
    assert_one_clear_error(result, cases[name][1])
    assert not target.exists()


def test_missing_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = assert_one_clear_error(
        run_cli(["spec", "check", "nope.yaml"]), "nope.yaml: no such file"
    )
    assert "spec example" in lines[1]
    (tmp_path / "folder.yaml").mkdir()
    assert_one_clear_error(run_cli(["spec", "check", "folder.yaml"]), "is a directory")


def test_bad_override_fails_cleanly_through_cli():
    good = str(CATALOGUE.parent / "spec" / "good_specs" / "minimal.yaml")
    result = run_cli(["spec", "check", good, "--set", "optimizer.lr=-1"])
    assert_one_clear_error(result, "error: --set optimizer.lr: must be > 0, got -1")
    result = run_cli(["spec", "check", good, "--set", "optimizer.lrr=0.1"])
    lines = assert_one_clear_error(result, "error: --set optimizer.lrr: unknown field")
    assert lines[1] == "hint: did you mean `optimizer.lr`?"
    result = run_cli(["spec", "check", good, "--set", "noequals"])
    assert_one_clear_error(result, "expected KEY=VALUE")
