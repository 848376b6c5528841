"""`scaffold update`: a project changes spec or scaffold version later, and the team's edits
survive a three-way merge (base: the render recorded in .scaffold/)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="update merges with git")
PACKAGE = "tabular_classifier"
MODEL_EDIT = "# team note: keep the model small\n"
CONFIG_EDIT = ("  log_every_n_steps: 10", "  log_every_n_steps: 5  # we log more often")


def _scaffold(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(params=["pytorch", "lightning"])
def edited(request, tmp_path) -> tuple[Path, str]:
    """A fresh project with the team's edits: model.py, config.yaml, a new file, a deleted test."""
    style = request.param
    project = tmp_path / "proj"
    code, output = _scaffold("new", "--style", style, "-o", str(project))
    assert code == 0, output
    model = project / PACKAGE / "model.py"
    docstring, rest = model.read_text().split("\n\n", 1)
    model.write_text(f"{docstring}\n\n{MODEL_EDIT}{rest}")
    config = project / "config.yaml"
    config.write_text(config.read_text().replace(*CONFIG_EDIT))
    (project / "NOTES.md").write_text("our notes\n")
    (project / "tests" / "test_smoke.py").unlink()
    return project, style


def _assert_edits_survive(project: Path) -> None:
    assert MODEL_EDIT in (project / PACKAGE / "model.py").read_text()
    assert CONFIG_EDIT[1] in (project / "config.yaml").read_text()
    assert (project / "NOTES.md").read_text() == "our notes\n"
    assert not (project / "tests" / "test_smoke.py").exists()


def _assert_trains_and_lints(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.train", "--fast-dev-run", "--accelerator", "cpu"],
        cwd=project,
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lint = [sys.executable, "-m", "ruff", "check", "--no-cache", "."]
    assert subprocess.run(lint, cwd=project, capture_output=True, check=False).returncode == 0
    black = [sys.executable, "-m", "black", "--check", "-q", "."]
    assert subprocess.run(black, cwd=project, capture_output=True, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, evidence",
    [
        # the optimizer and schedule are chosen at run time: the update changes config.yaml
        (["--set", "optimizer.name=sgd"], ("config.yaml", '  name: "sgd"')),
        (["--set", "scheduler.name=cosine"], ("config.yaml", '  name: "cosine"')),
        (
            ["--set", "model.type=cnn", "--set", "data.input_shape=[1,8,8]"],
            (f"{PACKAGE}/model.py", "Conv2d"),
        ),
    ],
    ids=["optimizer", "scheduler", "model-type"],
)
def test_update_applies_spec_changes_and_keeps_every_edit(edited, change, evidence):
    project, _ = edited
    code, output = _scaffold("update", str(project), *change)
    assert code == 0, output
    assert "CONFLICT" not in output
    file, text = evidence
    assert text in (project / file).read_text()
    _assert_edits_survive(project)
    _assert_trains_and_lints(project)


def test_conflicting_edit_is_marked_listed_and_exits_1(edited):
    project, _ = edited
    config = project / "config.yaml"
    original = config.read_text()
    edited_text = re.sub(r"(?m)^  max_epochs: .*$", "  max_epochs: 99  # ours", original)
    assert edited_text != original
    config.write_text(edited_text)
    code, output = _scaffold("update", str(project), "--set", "trainer.max_epochs=3")
    assert code == 1, output
    assert "C config.yaml" in output and "1 file has conflicts: config.yaml" in output
    merged = config.read_text()
    assert "<<<<<<< yours" in merged and ">>>>>>> scaffold now" in merged
    assert "max_epochs: 99  # ours" in merged and "max_epochs: 3" in merged  # nothing lost


def test_no_op_update_changes_no_byte(edited):
    project, _ = edited
    before = _snapshot(project)
    code, output = _scaffold("update", str(project))
    assert code == 0 and "up to date" in output, output
    assert _snapshot(project) == before


def test_dry_run_and_diff_write_nothing(edited):
    project, _ = edited
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd", "--diff")
    assert code == 0, output
    assert '+  name: "sgd"' in output and "dry run: nothing written" in output
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd", "--dry-run")
    assert code == 0 and "U tabular_classifier/config.py" in output, output
    assert _snapshot(project) == before


def test_update_after_a_scaffold_upgrade_merges_the_template_change(edited):
    """Simulate an older scaffold: the recorded base lacks a line this version renders."""
    project, _ = edited
    base_path = project / ".scaffold" / "base.json"
    base = json.loads(base_path.read_text())
    old_readme = base["README.md"].replace("## Speed\n", "## Speed (old wording)\n")
    base["README.md"] = old_readme
    base_path.write_text(json.dumps(base))
    readme = project / "README.md"
    readme.write_text(old_readme + "\nOur team's section.\n")  # edited since, on the old text
    code, output = _scaffold("update", str(project))
    assert code == 0, output
    assert "M README.md" in output
    text = readme.read_text()
    assert "## Speed\n" in text and "(old wording)" not in text
    assert text.endswith("\nOur team's section.\n")


@pytest.mark.parametrize(
    "setup, needle",
    [
        (lambda p: shutil.rmtree(p / ".scaffold"), "not a scaffold project"),
        (lambda p: (p / ".scaffold" / "project.yaml").write_text("{{{"), "record is corrupt"),
        (lambda p: (p / ".scaffold" / "base.json").write_text("[1]"), "record is corrupt"),
    ],
    ids=["not-a-project", "corrupt-yaml", "corrupt-base"],
)
def test_bad_project_is_one_clear_error_and_nothing_written(edited, setup, needle):
    project, _ = edited
    setup(project)
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 2, output
    assert needle in output and "hint:" in output and "Traceback" not in output
    assert _snapshot(project) == before


def test_unknown_set_key_is_a_spec_error_and_nothing_written(edited):
    project, _ = edited
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.nme=sgd")
    assert code == 2 and "error:" in output and "optimizer.nme" in output, output
    assert _snapshot(project) == before


def test_new_force_on_an_edited_project_names_the_edits_and_points_to_update(edited):
    project, style = edited
    result = CliRunner().invoke(main, ["new", "--style", style, "-o", str(project), "--force"])
    assert result.exit_code == 0, result.output
    assert "you had edited: config.yaml, tabular_classifier/model.py" in result.stderr
    assert "`scaffold update` would have merged them" in result.stderr
