"""`.pre-commit-hooks.yaml`: each hook is well formed and runs a command our CLI has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from torch_scaffold.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
IDS = [hook.get("id") for hook in HOOKS]


def test_hooks_file_lists_our_hooks():
    assert isinstance(HOOKS, list)
    assert IDS == ["scaffold-spec-check", "scaffold-convert-check"]


@pytest.mark.parametrize("hook", HOOKS, ids=IDS)
def test_hook_has_required_keys(hook):
    for key in ("id", "name", "entry", "language"):
        assert isinstance(hook.get(key), str) and hook[key], (hook, key)
    assert hook["language"] == "python"  # pre-commit pip-installs this repository
    if "files" in hook:
        re.compile(hook["files"])  # pre-commit reads `files` as a Python regex


@pytest.mark.parametrize("hook", HOOKS, ids=IDS)
def test_hook_entry_is_a_command_of_our_cli(hook):
    program, *args = shlex.split(hook["entry"])
    assert program == "scaffold"  # [project.scripts] in pyproject.toml
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output


def test_spec_check_hook_matches_spec_files_by_default():
    (hook,) = [h for h in HOOKS if h["id"] == "scaffold-spec-check"]
    files = re.compile(hook["files"])
    for path in ("spec.yaml", "spec.yml", "configs/mnist/spec.yaml"):
        assert files.search(path), path
    for path in ("myspec.yaml", "spec.yaml.bak", ".pre-commit-config.yaml", "spec.json"):
        assert not files.search(path), path


def test_readme_snippet_uses_the_shipped_hooks():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Pre-commit hooks", 1)[1]
    snippet = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    config = yaml.safe_load(snippet)
    (repo,) = config["repos"]
    assert {"repo", "rev", "hooks"} <= set(repo)
    assert [hook["id"] for hook in repo["hooks"]] == IDS
    for hook in repo["hooks"]:
        re.compile(hook["files"])


def test_convert_check_hook_takes_every_matching_file_and_exits_with_the_worst(tmp_path):
    """pre-commit passes all matching files at once: each gets its report, none hides another."""
    (hook,) = [h for h in HOOKS if h["id"] == "scaffold-convert-check"]
    _, *args = shlex.split(hook["entry"])
    manual = tmp_path / "train.py"
    manual.write_text((ROOT / "examples" / "scripts" / "mlp_classifier_argparse.py").read_text())
    done = tmp_path / "train_lightning.py"
    done.write_text(
        "import pytorch_lightning as pl\n\n\nclass Model(pl.LightningModule):\n"
        "    def training_step(self, batch, batch_idx):\n        return self(batch).sum()\n\n\n"
        "pl.Trainer(max_epochs=1).fit(Model())\n"
    )
    broken = tmp_path / "train_broken.py"
    broken.write_text("def f(:\n")

    runner = CliRunner()
    both = runner.invoke(main, [*args, str(done), str(manual)])
    assert both.exit_code == 1, both.output  # the manual loop still needs converting
    assert f"{done}: already uses PyTorch Lightning" in both.output
    assert f"would write {tmp_path / 'train_lightning_lightning.py'}" not in both.output
    assert f"{manual} -> " in both.output

    all_three = runner.invoke(main, [*args, str(broken), str(done), str(manual)])
    assert all_three.exit_code == 2  # bad input outranks work to do
    assert f"error: {broken}:1: syntax error" in all_three.output
    assert f"{manual} -> " in all_three.output  # reported after the broken file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["train.py", "train_lightning.py", "train_broken.py"]
    ), "--check writes nothing"

    with_output = runner.invoke(main, [*args, str(done), str(manual), "-o", "x.py"])
    assert with_output.exit_code == 2
    assert "-o, --diff and --stdout take one script" in with_output.output
