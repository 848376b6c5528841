"""A project made before the lean rewrite (issue 20) reaches today's shape through
`scaffold update`: the team's edits survive, the files rewritten whole are listed, and it trains."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from .test_update import PACKAGE, _assert_trains_and_lints, _scaffold

FIXTURES = Path(__file__).parent / "fixtures" / "made_before_lean"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="update merges with git")


def _older_project(style: str, folder: Path) -> Path:
    """The project exactly as the older scaffold wrote it: its record, then every file in it."""
    with tarfile.open(FIXTURES / f"{style}.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    for name, text in json.loads((folder / ".scaffold" / "base.json").read_text()).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_an_older_project_updates_keeps_its_edits_and_trains(tmp_path, style):
    project = _older_project(style, tmp_path / "proj")
    assert (project / PACKAGE / "config_checks.py").stat().st_size > 20_000  # the old framework
    model = project / PACKAGE / "model.py"
    model.write_text(model.read_text().replace("nn.ReLU()", "nn.GELU()"))
    config = project / "config.yaml"
    config.write_text(config.read_text().replace("  lr: 0.001", "  lr: 0.002  # tuned by us"))
    (project / "NOTES.md").write_text("our notes\n")

    code, output = _scaffold("update", str(project))

    assert code == 0, output
    assert "nn.GELU()" in model.read_text()
    assert "  lr: 0.002  # tuned by us" in config.read_text()
    assert (project / "NOTES.md").read_text() == "our notes\n"
    for rewritten in ("config.py", "config_checks.py", "cli.py", "train.py"):
        assert f"U {PACKAGE}/{rewritten}" in output  # each file replaced whole is named
    assert "<<<<<<<" not in output + model.read_text() + config.read_text()
    assert (project / PACKAGE / "config_checks.py").stat().st_size < 20_000
    _assert_trains_and_lints(project)
