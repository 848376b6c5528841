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
