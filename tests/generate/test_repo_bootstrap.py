"""What a team repository needs from day one: pre-commit hooks, a CI workflow, a first commit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import write_files

STYLES = ("pytorch", "lightning")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.mark.parametrize("style", STYLES)
def test_pre_commit_config_is_valid_and_pins_every_hook(style, tmp_path):
    project = write_files(render_project(Spec(), style), tmp_path)
    config = project / ".pre-commit-config.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    repos = yaml.safe_load(config.read_text())["repos"]
    hooks = {hook["id"] for repo in repos for hook in repo["hooks"]}
    assert {"ruff", "black"} <= hooks
    # pinned to a release tag, never a moving branch
    assert all(repo["rev"][0] in "v0123456789" for repo in repos), repos


def _spec(*overrides: str):
    from torch_scaffold.spec import example_yaml, load_spec_text

    return load_spec_text(example_yaml(), "<test>", list(overrides))


CSV = ("data.source=csv", "data.path=data/train.csv", "data.target=label")
AUGMENTED_IMAGES = ("data.source=image_folder", "data.path=data/images", "data.augment=true")


def _ci_commands(project: Path) -> list[str]:
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step]


@pytest.mark.parametrize("style", STYLES)
def test_ci_workflow_installs_cpu_torch_lints_and_tests(style, tmp_path):
    project = write_files(render_project(Spec(), style), tmp_path)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert {"push", "pull_request"} <= set(workflow[True])  # YAML 1.1 reads `on:` as True
    commands = _ci_commands(project)
    assert any("download.pytorch.org/whl/cpu" in command for command in commands)
    assert any('pip install -e ".[dev]"' in command for command in commands)
    assert "pre-commit run --all-files --show-diff-on-failure" in commands
    assert commands[-1] == "python -m pytest -q --durations=10"


@pytest.mark.parametrize("style", STYLES)
def test_ci_and_pre_commit_pins_agree(style, tmp_path):
    """The linters' versions have one source, .pre-commit-config.yaml: CI runs them through
    pre-commit, and whatever else names ruff or black pins the same version."""
    import re
    import tomllib

    project = write_files(render_project(Spec(), style), tmp_path)
    repos = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())["repos"]
    revs = {
        hook["id"]: repo["rev"].lstrip("v")
        for repo in repos
        for hook in repo["hooks"]
        if hook["id"] in ("ruff", "black")
    }
    assert set(revs) == {"ruff", "black"}
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = [*pyproject["dependencies"]]
    for extra in pyproject["optional-dependencies"].values():
        requirements += extra
    installs = [c for c in _ci_commands(project) if c.startswith(("pip ", "python -m pip"))]
    for text in [*requirements, *(word for c in installs for word in c.split())]:
        found = re.match(r"[\"']?(ruff|black)\b(.*)", text)
        if found:  # a second source of a linter's version must say the same
            assert found[2].strip("\"' ") == f"=={revs[found[1]]}", text
    assert "pre-commit run --all-files --show-diff-on-failure" in _ci_commands(project)
    assert any(requirement.startswith("pre-commit") for requirement in requirements)


@pytest.mark.parametrize("style", STYLES)
def test_ci_tests_the_oldest_python_the_project_claims_and_a_newest(style, tmp_path):
    import tomllib

    project = write_files(render_project(Spec(), style), tmp_path)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    job = workflow["jobs"]["test"]
    pythons = job["strategy"]["matrix"]["python-version"]
    claimed = tomllib.loads((project / "pyproject.toml").read_text())["project"]["requires-python"]
    assert claimed == f">={pythons[0]}" and len(pythons) >= 2
    assert tuple(map(int, pythons[-1].split("."))) >= (3, 13)
    setup = next(step for step in job["steps"] if "setup-python" in step.get("uses", ""))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("overrides", [AUGMENTED_IMAGES, ("data.source=torchvision", "data.path=data/torchvision")])
def test_ci_installs_a_matching_torchvision_and_imports_it(style, overrides, tmp_path):
    project = write_files(render_project(_spec(*overrides), style), tmp_path)
    commands = _ci_commands(project)
    torch = next(c for c in commands if "download.pytorch.org/whl/cpu" in c)
    assert torch.split()[:4] == ["pip", "install", "torch", "torchvision"]  # one index: a pair
    assert 'python -c "import torchvision"' in commands
    plain = _ci_commands(write_files(render_project(Spec(), style), tmp_path / "plain"))
    assert not any("torchvision" in command for command in plain)


@needs_git
def test_new_git_commits_exactly_the_project(tmp_path):
    target = tmp_path / "proj"
    result = CliRunner().invoke(main, ["new", "--style", "pytorch", "-o", str(target), "--git"])
    assert result.exit_code == 0, result.output
    assert "committed the project to the new repository" in result.output

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=target, capture_output=True, text=True, check=True
        ).stdout

    assert len(git("log", "--format=%H").split()) == 1
    assert git("status", "--porcelain") == ""
    committed = set(git("ls-files").split())
    written = {str(p.relative_to(target)) for p in target.rglob("*") if ".git" not in p.parts}
    assert committed == {p for p in written if (target / p).is_file()}


@needs_git
def test_new_git_inside_a_repository_leaves_other_staged_work_alone(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "notes.txt").write_text("mine\n")
    subprocess.run(["git", "add", "notes.txt"], cwd=tmp_path, check=True)
    args = ["new", "--style", "lightning", "-o", str(tmp_path / "proj"), "--git"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert status.splitlines() == ["A  notes.txt"]  # still staged, not committed


def test_new_git_without_git_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    target = tmp_path / "proj"
    result = CliRunner().invoke(main, ["new", "--style", "pytorch", "-o", str(target), "--git"])
    assert result.exit_code == 2
    assert "error: --git: git is not installed" in result.output
    assert not Path(target).exists()


@needs_git
@pytest.mark.parametrize(
    "style, name, package",
    [
        ("pytorch", "outputs", "outputs_project"),
        ("lightning", "lightning-logs", "lightning_logs_project"),
    ],
)
def test_new_git_commits_the_package_of_a_project_named_like_its_run_folder(
    style, name, package, tmp_path
):
    target = tmp_path / "proj"
    args = ["new", "--style", style, "--set", f"name={name}", "-o", str(target), "--git"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    committed = subprocess.run(
        ["git", "ls-files"], cwd=target, capture_output=True, text=True, check=True
    ).stdout.split()
    assert f"{package}/train.py" in committed and f"{package}/__init__.py" in committed


@needs_git
def test_gitignore_ignores_run_folders_only_at_the_top(tmp_path):
    files = render_project(Spec(), "lightning")
    write_files({".gitignore": files[".gitignore"]}, tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = [
        "outputs/run/last.ckpt",
        "lightning_logs/version_0/x",
        "build/lib/a.py",
        "dist/a.whl",
    ]
    code = ["tabular_classifier/outputs/heads.py", "tabular_classifier/build/steps.py"]
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *ignored, *code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout.split() == ignored


@needs_git
@pytest.mark.parametrize("style", STYLES)
def test_gitignore_covers_what_the_readme_commands_write(style, tmp_path):
    files = render_project(_spec(*CSV), style)
    readme = files["README.md"]
    for written in ("predictions.csv", "model.onnx", "model.pt2", "curves.png", "data/train.csv"):
        assert written in readme  # the README's commands write these
    write_files({".gitignore": files[".gitignore"]}, tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    ignored = ["predictions.csv", "model.onnx", "model.pt2", "curves.png", "data/train.csv"]
    code = ["tabular_classifier/data.py", "docs/figure.png", "tests/data/sample.csv"]
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *ignored, *code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout.split() == ignored
    assert "put your CSV file there" in readme
