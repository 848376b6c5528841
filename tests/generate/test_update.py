"""`scaffold update`: a project changes spec or scaffold version later, and the team's edits
survive a three-way merge (base: the render recorded in .scaffold/)."""

from __future__ import annotations

import json
import os
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


def _conflict(project: Path) -> dict[str, bytes]:
    """Edit config.yaml where update changes it; returns the tree just before the update."""
    config = project / "config.yaml"
    config.write_text(
        re.sub(r"(?m)^  max_epochs: .*$", "  max_epochs: 99  # ours", config.read_text())
    )
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "trainer.max_epochs=3")
    assert code == 1 and "1 file has conflicts: config.yaml" in output, output
    return before


def test_update_refuses_while_markers_remain_and_abort_restores_the_tree(edited):
    project, _ = edited
    before = _conflict(project)
    marked = _snapshot(project)
    for args in ([], ["--set", "optimizer.name=sgd"]):
        code, output = _scaffold("update", str(project), *args)
        assert code == 1, output
        assert "not resolved yet: config.yaml" in output and "--abort" in output, output
        assert _snapshot(project) == marked  # refused: nothing written
    code, output = _scaffold("update", str(project), "--abort")
    assert code == 0, output
    assert _snapshot(project) == before
    code, output = _scaffold("update", str(project), "--abort")
    assert code == 2 and "no update with conflicts to abort" in output, output


def test_once_the_markers_are_resolved_update_goes_on(edited):
    project, _ = edited
    _conflict(project)
    config = project / "config.yaml"
    resolved = re.sub(
        r"<<<<<<< yours\n(.*?)=======\n.*?>>>>>>> scaffold now\n",
        r"\1",
        config.read_text(),
        flags=re.S,
    )
    config.write_text(resolved)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 0 and "conflicts of the last update are resolved" in output, output
    assert not (project / ".scaffold" / "conflicts.json").exists()
    assert "max_epochs: 99  # ours" in config.read_text() and "<<<<<<<" not in config.read_text()
    code, output = _scaffold("update", str(project))
    assert code == 0 and "up to date" in output, output


def test_no_op_update_changes_no_byte(edited):
    project, _ = edited
    before = _snapshot(project)
    code, output = _scaffold("update", str(project))
    assert code == 0 and "up to date" in output, output
    assert _snapshot(project) == before


def _recorded_overrides(project: Path) -> list[str]:
    import yaml

    return yaml.safe_load((project / ".scaffold" / "project.yaml").read_text())["overrides"]


def _commit(project: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    who = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", *who, "commit", "-qm", "start"], cwd=project, check=True)


def test_the_same_set_twice_writes_nothing_the_second_time_and_a_third_change_works(edited):
    project, _ = edited
    _commit(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 0, output
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "sgd"],
        cwd=project,
        check=True,
    )
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 0 and "up to date" in output, output
    assert _snapshot(project) == before
    assert _recorded_overrides(project) == ["optimizer.name=sgd"]
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=adamw")
    assert code == 0, output
    assert _recorded_overrides(project) == ["optimizer.name=adamw"]  # keyed by field: latest wins
    assert "adamw" in (project / PACKAGE / "config.py").read_text()


def test_overrides_are_a_set_keyed_by_field_and_a_section_replaces_its_fields():
    from torch_scaffold.spec.overrides import merge_overrides

    earlier = ["optimizer.lr=0.1", "trainer.early_stopping.patience=3", "optimizer.name=sgd"]
    later = ["optimizer.lr=0.2", "trainer.early_stopping={enabled: false}"]
    assert merge_overrides(earlier, later) == [
        "optimizer.name=sgd",
        "optimizer.lr=0.2",
        "trainer.early_stopping={enabled: false}",
    ]
    assert merge_overrides(["a.b=1"], ["a.bc=2"]) == ["a.b=1", "a.bc=2"]


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


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_an_edited_spec_file_is_picked_up_and_recorded_with_its_hash(tmp_path, style):
    import hashlib

    import yaml

    spec = tmp_path / "spec.yaml"
    code, text = _scaffold("spec", "example")
    spec.write_text(text)
    project = tmp_path / "proj"
    code, output = _scaffold("new", str(spec), "--style", style, "-o", str(project))
    assert code == 0, output
    code, output = _scaffold("update", str(project), "--set", "trainer.max_epochs=3")
    assert code == 0, output
    spec.write_text(text.replace("  name: adamw", "  name: sgd", 1))
    code, output = _scaffold("update", str(project))
    assert code == 0 and f"{spec} changed since it was recorded" in output, output
    assert '"sgd"' in (project / "config.yaml").read_text()
    assert "max_epochs: 3" in (project / "config.yaml").read_text()  # the --set still applies
    record = yaml.safe_load((project / ".scaffold" / "project.yaml").read_text())
    assert record["spec_source"] == str(spec)
    assert record["spec_sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    code, output = _scaffold("update", str(project))
    assert code == 0 and "up to date" in output, output
    spec.unlink()
    code, output = _scaffold("update", str(project))
    assert code == 0 and "is not there; using the copy recorded" in output, output


def test_spec_keeps_the_earlier_overrides_and_says_so_unless_reset(project, tmp_path):
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 0, output
    spec = tmp_path / "other.yaml"
    spec.write_text(_scaffold("spec", "example")[1].replace("  lr: ", "  lr: 0.02 #", 1))
    code, output = _scaffold("update", str(project), "--spec", str(spec))
    assert code == 0, output
    assert "earlier --set overrides still apply" in output and "optimizer.name=sgd" in output
    config = (project / "config.yaml").read_text()
    assert '"sgd"' in config and "lr: 0.02" in config
    code, output = _scaffold("update", str(project), "--spec", str(spec), "--reset-overrides")
    assert code == 0 and "dropped the earlier --set overrides: optimizer.name=sgd" in output
    assert '"adamw"' in (project / "config.yaml").read_text()


# --- Update never reaches outside the project, never tracebacks on odd files -----------------


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh, unedited project (one style: what is tested here does not depend on it)."""
    project = tmp_path / "proj"
    code, output = _scaffold("new", "--style", "lightning", "-o", str(project))
    assert code == 0, output
    return project


def _add_to_base(project: Path, entries: dict[str, str]) -> None:
    base_path = project / ".scaffold" / "base.json"
    base = json.loads(base_path.read_text())
    base_path.write_text(json.dumps({**base, **entries}))


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_tampered_base_naming_a_file_outside_is_refused(project, tmp_path, where):
    """base.json lists a file outside the project with its exact text: scaffold no longer
    generates it and it looks unedited, so an update that trusted the record would delete it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file\n")
    _add_to_base(
        project, {"../victim.txt" if where == "relative" else str(victim): victim.read_text()}
    )
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 2, output
    assert "not the path of a file inside the project" in output and "hint:" in output
    assert "Traceback" not in output
    assert victim.read_text() == "someone else's file\n"
    assert _snapshot(project) == before


@pytest.mark.parametrize(
    "entry, needle",
    [
        (PACKAGE, f"{PACKAGE} is a folder"),
        (f"{PACKAGE}/", "not the path of a file inside the project"),
    ],
)
def test_a_folder_entry_in_the_base_is_one_clear_error(project, entry, needle):
    _add_to_base(project, {entry: "x = 1\n"})
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 2, output
    assert needle in output and "hint:" in output and "Traceback" not in output
    assert _snapshot(project) == before


def test_a_generated_file_replaced_by_a_folder_is_one_clear_error(project):
    config = project / "config.yaml"
    config.unlink()
    config.mkdir()
    (config / "mine.yaml").write_text("ours\n")
    before = _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 2, output
    assert "config.yaml is a folder" in output and "hint:" in output and "Traceback" not in output
    assert _snapshot(project) == before


def test_a_symlinked_package_folder_is_never_written_through(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (project / PACKAGE).rename(elsewhere)
    (project / PACKAGE).symlink_to(elsewhere, target_is_directory=True)
    outside, inside = _snapshot(elsewhere), _snapshot(project)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 2, output
    assert f"{PACKAGE} is a symbolic link" in output and "hint:" in output, output
    assert _snapshot(elsewhere) == outside and _snapshot(project) == inside


def test_a_symlinked_file_is_skipped_with_a_warning_then_merged_once_a_file(project, tmp_path):
    shared = tmp_path / "shared-config.yaml"
    config = project / "config.yaml"
    shared.write_text(config.read_text())
    config.unlink()
    config.symlink_to(shared)
    code, output = _scaffold("update", str(project), "--set", "optimizer.name=sgd")
    assert code == 0, output
    assert "config.yaml is a symbolic link; scaffold's changes to it were skipped" in output
    assert "<symlink" not in output and "C config.yaml" not in output
    assert config.is_symlink() and '"sgd"' not in shared.read_text()  # the link's file untouched
    assert '"sgd"' in (project / PACKAGE / "config.py").read_text()  # the rest was updated
    config.unlink()
    shutil.copy(shared, config)  # a file again: the skipped change is merged now
    code, output = _scaffold("update", str(project))
    assert code == 0, output
    assert "U config.yaml" in output and '  name: "sgd"' in config.read_text()


# --- A killed update is undone (or finished) by the next run ---------------------------------

CRASHED = 86
CHANGES = ("mkdir", "rename", "replace", "link", "unlink", "rmdir")
LEGACY = f"{PACKAGE}/legacy.py"  # generated by an "older scaffold": the update deletes it
KILL_UPDATE = "optimizer.name=sgd"


def _with_a_file_to_delete(project: Path) -> None:
    _add_to_base(project, {LEGACY: "x = 1\n"})
    (project / LEGACY).write_text("x = 1\n")


def _update_killed_at(project: Path, crash_at: int | None) -> tuple[int, int]:
    """Fork; the child runs the update and os._exit()s (like kill -9: no clean-up) at its
    crash_at-th change to the file system once it starts writing. Returns (exit code,
    changes the write made)."""
    from torch_scaffold.commands.update import run_update
    from torch_scaffold.generate import write

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            count, writing = [0], [False]

            def wrap(real):
                def change(*args, **kwargs):
                    if writing[0]:
                        count[0] += 1
                        if count[0] == crash_at:
                            os.write(write_end, str(count[0]).encode())
                            os._exit(CRASHED)
                    return real(*args, **kwargs)

                return change

            for name in CHANGES:
                setattr(os, name, wrap(getattr(os, name)))
            update_files = write.update_files

            def counted_update(*args, **kwargs):
                writing[0] = True
                return update_files(*args, **kwargs)

            write.update_files = counted_update
            code = run_update(str(project), overrides=[KILL_UPDATE], allow_dirty=True)
            os.write(write_end, str(count[0]).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        changes = int(pipe.read() or 0)
    return os.waitstatus_to_exitcode(status), changes


def _leftovers(project: Path) -> list[str]:
    strays = [p.name for p in project.parent.iterdir() if p.name.startswith(f".{project.name}.")]
    return strays + [str(p) for p in project.rglob("*.tmp")]


def _check_kills(project: Path, tmp_path: Path, points: list[int] | None) -> None:
    _with_a_file_to_delete(project)
    old = _snapshot(project)
    done = tmp_path / "done"
    shutil.copytree(project, done, symlinks=True)
    code, total = _update_killed_at(done, None)
    assert code == 0 and total > 10, (code, total)
    new = _snapshot(done)
    assert LEGACY not in new and new != old
    for crash_at in points or range(1, total + 1):
        trial = tmp_path / f"kill{crash_at}" / "proj"
        shutil.copytree(project, trial, symlinks=True)
        code, _ = _update_killed_at(trial, crash_at)
        assert code == CRASHED, (crash_at, code)
        # the next run first puts the tree back entirely (or finds it entirely updated) ...
        from torch_scaffold.generate.write import recover_interrupted

        recover_interrupted(trial)
        state = _snapshot(trial)
        assert state in (old, new), crash_at
        assert _leftovers(trial) == [], crash_at
        # ... and then converges: the update again, or nothing left to do
        again = ["--set", KILL_UPDATE] if state == old else []
        code, output = _scaffold("update", str(trial), *again)
        assert code == 0, (crash_at, output)
        assert _snapshot(trial) == new and _leftovers(trial) == [], crash_at


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork")
def test_an_update_killed_mid_write_leaves_the_old_or_the_new_tree(project, tmp_path):
    _check_kills(project, tmp_path, [1, 8, 15, 22])


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork")
def test_an_update_killed_at_every_step_leaves_the_old_or_the_new_tree(project, tmp_path):
    _check_kills(project, tmp_path, None)


def _small_project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "a.py").chmod(0o750)
    (root / "old.txt").write_text("old\n")
    return root


def test_update_files_keeps_modes_and_moves_deleted_files_out(tmp_path):
    from torch_scaffold.generate.write import update_files

    project = _small_project(tmp_path / "proj")
    update_files({"pkg/a.py": "a = 2\n", "pkg/b.py": "b = 1\n"}, ["old.txt"], project)
    assert (project / "pkg" / "a.py").read_text() == "a = 2\n"
    assert (project / "pkg" / "a.py").stat().st_mode & 0o777 == 0o750
    assert (project / "pkg" / "b.py").read_text() == "b = 1\n"
    assert not (project / "old.txt").exists() and _leftovers(project) == []


def test_a_file_to_delete_that_became_a_folder_is_kept_and_nothing_changes(tmp_path, monkeypatch):
    from torch_scaffold.errors import OutputError
    from torch_scaffold.generate import write

    project = _small_project(tmp_path / "proj")
    before = _snapshot(project)

    def user_makes_a_folder(target: Path) -> None:  # between the checks and the moves
        (target / "old.txt").unlink()
        (target / "old.txt").mkdir()
        (target / "old.txt" / "mine.md").write_text("mine\n")

    monkeypatch.setattr(write, "_staged", user_makes_a_folder)
    with pytest.raises(OutputError, match="old.txt was created by another program"):
        write.update_files({"pkg/a.py": "a = 2\n"}, ["old.txt"], project)
    assert (project / "old.txt" / "mine.md").read_text() == "mine\n"
    assert _snapshot(project) == {**_without_old(before), "old.txt/mine.md": b"mine\n"}
    assert _leftovers(project) == []


def _without_old(snapshot: dict[str, bytes]) -> dict[str, bytes]:
    return {path: data for path, data in snapshot.items() if path != "old.txt"}
