"""`scaffold new` through click: output, defaults, errors and exit codes."""

import os
import re

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def test_new_writes_the_default_project_and_says_what_next(runner, tmp_path):
    target = tmp_path / "out"
    result = runner.invoke(main, ["new", "--style", "lightning", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "tabular_classifier" / "module.py").is_file()
    # incl. slurm.sbatch, synthetic.py, checkpoint*.py, config_checks.py, pre-commit, CI workflow,
    # runs.py, predict.py, export.py, cli.py, __main__.py, run_folder.py and their tests
    assert "Wrote 36 files" in result.output  # and .scaffold/ (project.yaml, base.json)
    assert f"cd {target}" in result.output
    assert "python -m tabular_classifier fit --max-epochs 2" in result.output


def test_output_defaults_to_the_project_slug(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["new", "--style", "pytorch"])
    assert result.exit_code == 0, result.output
    assert os.path.isfile(os.path.join("tabular-classifier", "tabular_classifier", "engine.py"))


def test_non_empty_target_exits_2_with_a_hint(runner, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = runner.invoke(main, ["new", "--style", "pytorch", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert f"error: {tmp_path}: folder is not empty" in result.output
    assert "hint:" in result.output and "--force" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_force_keeps_user_files_and_lists_them(runner, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = runner.invoke(main, ["new", "--style", "pytorch", "-o", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "keep.txt").read_text() == "x"
    assert "keep.txt" in result.output


def test_formatting_failure_writes_nothing(runner, tmp_path, monkeypatch):
    from torch_scaffold.generate import formatting

    def broken(source, path="<generated>"):
        raise formatting.FormattingError(path, "simulated")

    monkeypatch.setattr(formatting, "format_python", broken)
    monkeypatch.setenv("TORCH_SCAFFOLD_CACHE_DIR", "off")  # black must run, not the cache
    target = tmp_path / "out"
    result = runner.invoke(main, ["new", "--style", "lightning", "-o", str(target)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_relative_output_is_resolved_and_reported(runner, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = runner.invoke(main, ["new", "--style", "pytorch", "-o", "../elsewhere/proj"])
    assert result.exit_code == 0, result.output
    resolved = tmp_path / "elsewhere" / "proj"
    assert f"to {resolved}:" in result.output and f"cd {resolved}" in result.output
    assert (resolved / "tabular_classifier" / "train.py").is_file()
    assert list(work.iterdir()) == []


def test_force_reports_replaced_and_kept_files(runner, tmp_path):
    target = tmp_path / "proj"
    assert runner.invoke(main, ["new", "--style", "pytorch", "-o", str(target)]).exit_code == 0
    (target / "README.md").write_text("edited")
    (target / "my_notes.md").write_text("mine")
    result = runner.invoke(main, ["new", "--style", "pytorch", "-o", str(target), "--force"])
    assert result.exit_code == 0, result.output
    assert "Kept 1 file scaffold did not generate: my_notes.md" in result.output
    written = re.search(r"Wrote (\d+) files", result.output).group(1)
    assert f"Replaced {written} existing files" in result.output  # every generated file existed
    assert (target / "my_notes.md").read_text() == "mine"
    assert (target / "README.md").read_text() != "edited"
