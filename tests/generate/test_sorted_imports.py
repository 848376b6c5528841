"""Every generated module passes `ruff check --select I` (sorted imports) with the project's
own ruff settings, in both styles: what a user's pre-commit or CI runs first."""

import subprocess
import sys

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import EXAMPLE_SPECS, load_example, write_files

pytest.importorskip("ruff")
STYLES = ("pytorch", "lightning")


def _unsorted_imports(spec, style, folder) -> str:
    """ruff's report on the generated project, or "" when its imports are sorted."""
    project = write_files(render_project(spec, style), folder)
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "I", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


@pytest.mark.parametrize("style", STYLES)
def test_default_project_imports_are_sorted(style, tmp_path):
    assert _unsorted_imports(Spec(), style, tmp_path / "project") == ""


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("path", EXAMPLE_SPECS, ids=lambda path: path.stem)
def test_example_project_imports_are_sorted(path, style, tmp_path):
    assert _unsorted_imports(load_example(path), style, tmp_path / "project") == ""
