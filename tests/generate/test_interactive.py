"""`scaffold new -i`: questions with defaults, each answer validated as typed; no TTY, no hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.commands import interactive
from torch_scaffold.spec import load_spec


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(interactive, "has_terminal", lambda: True)


def test_defaults_make_a_valid_project_and_its_spec(terminal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["new", "-i"], input="\n" * 5)
    assert result.exit_code == 0, result.output
    assert "Wrote the spec to my-model.spec.yaml" in result.output
    assert "(lightning style) to" in result.output  # the default style
    spec = load_spec(tmp_path / "my-model.spec.yaml")
    assert (spec.name, spec.task, spec.model.type, spec.data.source) == (
        "my-model",
        "classification",
        "mlp",
        "synthetic",
    )
    assert (tmp_path / "my-model" / "my_model" / "model.py").is_file()


def test_each_answer_is_checked_and_asked_again(terminal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("a,b,label\n" + "1,2,0\n3,4,1\n" * 10)
    answers = ["", "segmentation", "regression", "unet", "mlp", "csv", "missing.csv", "rows.csv"]
    answers += ["pytorch"]
    result = CliRunner().invoke(main, ["new", "-i", "-o", "proj"], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "'segmentation' is not one of" in result.output
    assert "'unet' is not one of" in result.output
    assert "Path 'missing.csv' does not exist" in result.output
    spec = load_spec(tmp_path / "proj.spec.yaml")
    assert spec.task == "regression" and spec.data.source == "csv"
    assert Path(spec.data.path) == tmp_path / "rows.csv"
    assert "(pytorch style)" in result.output


def test_an_answer_that_breaks_a_rule_is_explained_and_asked_again(terminal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a CNN cannot read the flat features of a language-modelling task
    answers = ["lm", "language_modelling", "cnn", "rnn", "", "lightning"]
    result = CliRunner().invoke(main, ["new", "-i"], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "error: <your answers>" in result.output and "model.type" in result.output
    assert load_spec(tmp_path / "lm.spec.yaml").model.type == "rnn"


def test_without_a_terminal_it_refuses_at_once_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["new", "-i", "--style", "pytorch"], input="")
    assert result.exit_code == 2
    assert "error: -i asks questions, and there is no terminal" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_spec_file_is_never_replaced(terminal, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model.spec.yaml").write_text("mine\n")
    result = CliRunner().invoke(main, ["new", "-i"], input="\n" * 5)
    assert result.exit_code == 2
    assert "my-model.spec.yaml: exists already" in result.output
    assert (tmp_path / "my-model.spec.yaml").read_text() == "mine\n"
