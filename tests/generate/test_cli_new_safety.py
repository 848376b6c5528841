"""`scaffold new --force` never loses work silently: uncommitted git changes, the spec itself.

Two catalogues, each case naming its input and the exact outcome (exit code, the stderr's
first line, what happens to the file at stake):

- GIT: the target is (or is inside) a git work tree; --force refuses to replace a generated
  file with uncommitted changes unless --allow-dirty.
- INPUTS: the spec (or the custom model's source) lives inside the target under a name scaffold
  generates; the run is refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main

from .helpers import REPO

HAS_GIT = shutil.which("git") is not None


def invoke(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, ["new", "--style", "pytorch", *args], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture(scope="module", autouse=True)
def render_once():
    """Rendering is the slow part (black) and not what is tested here: each spec once."""
    from torch_scaffold import generate

    real, rendered = generate.render_project, {}

    def cached(spec, style):
        key = (repr(spec), style)
        if key not in rendered:
            rendered[key] = real(spec, style)
        return dict(rendered[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generate, "render_project", cached)
        yield


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """One freshly generated default project, copied by each case."""
    target = tmp_path_factory.mktemp("template") / "proj"
    assert invoke("-o", str(target)).exit_code == 0
    return target


def generated(project: Path) -> list[str]:
    return sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())


def git(folder: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t")
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def repo(root: Path) -> None:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated")


# --- uncommitted changes under git --------------------------------------------------------


@dataclass(frozen=True)
class GitCase:
    name: str
    prepare: Callable[[Path], Path]  # gets a copy of the project in a fresh folder; -> target
    flags: tuple[str, ...]
    exit_code: int
    first_line: str  # the stderr's first line ("" when none), {target} filled in
    edited: str | None = "README.md"  # a file whose edit must survive (exit 2) or not (exit 0)


def _committed(target: Path) -> Path:
    repo(target)
    return target


def _edit_tracked(target: Path) -> Path:
    repo(target)
    (target / "README.md").write_text("my notes\n")
    return target


def _edit_staged(target: Path) -> Path:
    repo(target)
    (target / "README.md").write_text("my notes\n")
    git(target, "add", "README.md")
    return target


def _edit_two(target: Path) -> Path:
    repo(target)
    (target / "README.md").write_text("my notes\n")
    (target / "tabular_classifier" / "train.py").write_text("# mine\n")
    return target


def _untracked_generated(target: Path) -> Path:
    git(target, "init", "-q")  # nothing committed: every generated file is untracked
    (target / "README.md").write_text("my notes\n")
    return target


def _ignored_generated(target: Path) -> Path:
    (target / ".gitignore").write_text("README.md\n")  # .gitignore itself is generated
    repo(target)
    (target / "README.md").write_text("my notes\n")
    return target


def _edit_not_generated(target: Path) -> Path:
    (target / "notes.md").write_text("v1\n")
    repo(target)
    (target / "notes.md").write_text("v2\n")
    return target


def _subfolder_of_repo(target: Path) -> Path:
    repo(target.parent)  # the repository is the folder above the project
    (target / "README.md").write_text("my notes\n")
    return target


def _no_repo(target: Path) -> Path:
    (target / "README.md").write_text("my notes\n")
    return target


REPLACED = "Replaced {n} existing files (--force):"
REFUSED = "error: {target}: --force would replace {n} with uncommitted changes: {files}"

GIT = [
    GitCase("clean-repo", _committed, ("--force",), 0, "", None),
    GitCase(
        "edited-tracked-file",
        _edit_tracked,
        ("--force",),
        2,
        REFUSED.format(target="{target}", n="1 file", files="README.md"),
    ),
    GitCase(
        "staged-edit",
        _edit_staged,
        ("--force",),
        2,
        REFUSED.format(target="{target}", n="1 file", files="README.md"),
    ),
    GitCase(
        "two-edited-files-all-named",
        _edit_two,
        ("--force",),
        2,
        REFUSED.format(
            target="{target}", n="2 files", files="README.md, tabular_classifier/train.py"
        ),
    ),
    GitCase(
        "untracked-generated-files",
        _untracked_generated,
        ("--force",),
        2,
        REFUSED.format(target="{target}", n="{n}", files="{all}"),
    ),
    GitCase("edited-and-allow-dirty", _edit_tracked, ("--force", "--allow-dirty"), 0, ""),
    GitCase("ignored-file-is-not-a-change", _ignored_generated, ("--force",), 0, ""),
    GitCase("edited-file-scaffold-keeps", _edit_not_generated, ("--force",), 0, "", None),
    GitCase(
        "project-in-a-subfolder-of-the-repo",
        _subfolder_of_repo,
        ("--force",),
        2,
        REFUSED.format(target="{target}", n="1 file", files="README.md"),
    ),
    GitCase("not-a-repo", _no_repo, ("--force",), 0, ""),
]


EDITED_WARNING = "warning: --force replaced"


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
@pytest.mark.parametrize("case", GIT, ids=[c.name for c in GIT])
def test_force_and_uncommitted_changes(case, project, tmp_path):
    target = tmp_path / "work" / "proj"
    shutil.copytree(project, target)
    case.prepare(target)
    before = (target / case.edited).read_bytes() if case.edited else None
    result = invoke("-o", str(target), *case.flags)
    assert result.exit_code == case.exit_code, result.output
    every = generated(project)
    expected = case.first_line.format(target=target, n=f"{len(every)} files", all=", ".join(every))
    # (the warning naming edited generated files is test_update.py's subject)
    lines = [line for line in result.stderr.splitlines() if not line.startswith(EDITED_WARNING)]
    assert (lines[0] if lines else "") == expected
    if case.exit_code == 2:
        assert lines[1] == (
            "hint: commit or stash them first (git stash -u), or pass --allow-dirty to replace"
            " them anyway"
        )
        assert (target / case.edited).read_bytes() == before  # the edit survived
    else:
        assert REPLACED.format(n=len(every)) in result.stdout
        if case.edited:
            assert (target / case.edited).read_bytes() != before  # replaced, as asked


def test_force_lists_every_replaced_file_by_path(project, tmp_path):
    target = tmp_path / "proj"
    shutil.copytree(project, target)
    result = invoke("-o", str(target), "--force")
    assert result.exit_code == 0, result.output
    every = generated(project)
    listed = result.stdout.split(REPLACED.format(n=len(every)) + "\n", 1)[1].splitlines()
    assert listed[: len(every)] == [f"  {rel}" for rel in every]


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
def test_git_internals_are_never_listed_as_kept(project, tmp_path):
    target = tmp_path / "proj"
    shutil.copytree(project, target)
    repo(target)
    result = invoke("-o", str(target), "--force")
    assert result.exit_code == 0, result.output
    assert "Kept 1 file scaffold did not generate: .git/" in result.stdout
    assert ".git/objects" not in result.output and ".git/HEAD" not in result.output


def test_without_git_installed_the_check_is_skipped(project, tmp_path):
    target = tmp_path / "proj"
    shutil.copytree(project, target)
    (target / "README.md").write_text("my notes\n")
    result = invoke("-o", str(target), "--force", env={"PATH": str(tmp_path / "no-bin")})
    assert result.exit_code == 0, result.output
    assert "could not ask git" not in result.stderr


# --- the run's own inputs inside the target ------------------------------------------------


@dataclass(frozen=True)
class InputCase:
    name: str
    place: Callable[[Path, Path], tuple[str, Path]]  # (target, tmp) -> (spec argument, the
    # input file that must come out unchanged); writes them
    exit_code: int
    first_line: str  # {spec} is the spec argument


def _spec_text() -> str:
    return CliRunner().invoke(main, ["spec", "example"]).stdout


def _spec_as_config(target: Path, tmp: Path) -> tuple[str, Path]:
    (target / "config.yaml").write_text(_spec_text())
    return str(target / "config.yaml"), target / "config.yaml"


def _spec_as_config_relative(target: Path, tmp: Path) -> tuple[str, Path]:
    (target / "config.yaml").write_text(_spec_text())
    return "proj/./config.yaml", target / "config.yaml"  # the test runs in target's parent


def _spec_hard_linked(target: Path, tmp: Path) -> tuple[str, Path]:
    (tmp / "spec.yaml").write_text(_spec_text())
    (target / "config.yaml").unlink()
    os.link(tmp / "spec.yaml", target / "config.yaml")
    return str(tmp / "spec.yaml"), tmp / "spec.yaml"


def _spec_other_name(target: Path, tmp: Path) -> tuple[str, Path]:
    (target / "spec.yaml").write_text(_spec_text())
    return str(target / "spec.yaml"), target / "spec.yaml"


def _model_source_inside(target: Path, tmp: Path) -> tuple[str, Path]:
    """model.source points at the project's own copy of the model (the generated name)."""
    source = target / "custom_net" / "custom_model.py"
    source.parent.mkdir()
    shutil.copy(REPO / "examples" / "models" / "my_net.py", source)
    spec = (REPO / "examples" / "specs" / "custom_model.yaml").read_text()
    (tmp / "custom.yaml").write_text(spec.replace("../models/my_net.py", str(source)))
    return str(tmp / "custom.yaml"), source


SPEC_REFUSED = "error: {spec}: is the spec being read, and scaffold would replace it with the"
INPUTS = [
    InputCase(
        "spec-is-the-generated-config",
        _spec_as_config,
        2,
        SPEC_REFUSED + " generated config.yaml",
    ),
    InputCase(
        "spec-by-a-relative-path",
        _spec_as_config_relative,
        2,
        SPEC_REFUSED + " generated config.yaml",
    ),
    InputCase(
        "spec-hard-linked-as-config",
        _spec_hard_linked,
        2,
        SPEC_REFUSED + " generated config.yaml",
    ),
    InputCase("spec-under-a-name-scaffold-keeps", _spec_other_name, 0, ""),
    InputCase(
        "custom-model-source-is-a-generated-file",
        _model_source_inside,
        2,
        "error: {target}/custom_net/custom_model.py: is the model source being read, and"
        " scaffold would replace it with the generated custom_net/custom_model.py",
    ),
]


@pytest.mark.parametrize("case", INPUTS, ids=[c.name for c in INPUTS])
def test_an_input_inside_the_target_is_never_replaced(case, project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "proj"
    shutil.copytree(project, target)
    spec, watched = case.place(target, tmp_path)
    before = watched.read_bytes()
    result = CliRunner().invoke(
        main, ["new", spec, "--style", "pytorch", "-o", str(target), "--force"]
    )
    assert result.exit_code == case.exit_code, result.output
    lines = result.stderr.splitlines()
    assert (lines[0] if lines else "") == case.first_line.format(spec=spec, target=target)
    if case.exit_code == 2:
        assert lines[1].startswith("hint: move or rename it out of the way")
    assert watched.read_bytes() == before
