"""Usage errors read like every other error: `error: ...` and `hint: run 'scaffold ... --help'`.

Catalogue: each case is a command line and the exact stderr it gets (two lines), with exit
code 2 and nothing on stdout. --help itself is unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    error: str  # the first line, after "error: "
    command: str  # the hint names `<command> --help`


CASES = [
    Case(
        "unknown-style",
        ("new", "--style", "tensorflow"),
        "Invalid value for '--style': 'tensorflow' is not one of 'pytorch', 'lightning'.",
        "scaffold new",
    ),
    Case(
        "missing-style",
        ("new",),
        "Missing option '--style'. Choose from: pytorch, lightning",
        "scaffold new",
    ),
    Case(
        "style-without-value",
        ("new", "--style"),
        "Option '--style' requires an argument.",
        "scaffold new",
    ),
    Case(
        "unknown-flag-with-suggestion",
        ("new", "--style", "pytorch", "--forc"),
        "No such option '--forc'. Did you mean '--force'?",
        "scaffold new",
    ),
    Case(
        "extra-argument",
        ("new", "a.yaml", "b.yaml", "--style", "pytorch"),
        "Got unexpected extra argument (b.yaml)",
        "scaffold new",
    ),
    Case(
        "set-without-value",
        ("new", "--style", "pytorch", "--set"),
        "Option '--set' requires an argument.",
        "scaffold new",
    ),
    Case(
        "spec-check-unknown-flag",
        ("spec", "check", "s.yaml", "--strict"),
        "No such option '--strict'. Did you mean '--set'?",
        "scaffold spec check",
    ),
    Case("convert-without-script", ("convert",), "Missing argument 'SCRIPT'.", "scaffold convert"),
    Case(
        "convert-unknown-flag",
        ("convert", "train.py", "--inplace"),
        "No such option '--inplace'.",
        "scaffold convert",
    ),
    Case(
        "spec-check-without-file",
        ("spec", "check"),
        "Missing argument 'SPEC.yaml...'.",
        "scaffold spec check",
    ),
    Case("unknown-spec-command", ("spec", "lint"), "No such command 'lint'.", "scaffold spec"),
    Case("unknown-command", ("generate",), "No such command 'generate'.", "scaffold"),
    Case(
        "unknown-top-level-flag",
        ("--verbose",),
        "No such option '--verbose'. Did you mean '--version'?",
        "scaffold",
    ),
    Case("unknown-top-level-flag-no-match", ("--zzz",), "No such option '--zzz'.", "scaffold"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_usage_errors(case):
    result = CliRunner().invoke(main, list(case.args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {case.error}\nhint: run '{case.command} --help'\n"


def test_the_hint_says_scaffold_under_python_dash_m():
    """Run as `python -m torch_scaffold`, click's name would be that; the hint names the
    installed command."""
    done = subprocess.run(
        [sys.executable, "-m", "torch_scaffold", "new", "--style", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == "hint: run 'scaffold new --help'"
    assert "Usage:" not in done.stderr


@pytest.mark.parametrize("args", [("--help",), ("new", "--help"), ("convert", "-h")])
def test_help_is_unchanged(args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    assert result.stderr == ""


def test_a_group_without_a_command_still_shows_its_help():
    result = CliRunner().invoke(main, ["spec"])
    assert result.exit_code == 2  # click's own behaviour for a group without a command
    assert "Usage: " in result.output and "check" in result.output
    assert "error:" not in result.output
