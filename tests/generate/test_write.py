"""write_project: all or nothing, refuse non-empty targets, --force keeps user files."""

import os

import pytest

from torch_scaffold.errors import OutputError
from torch_scaffold.generate import write_project

FILES = {"a.txt": "alpha\n", "pkg/b.py": "x = 1\n", "pkg/deep/c.md": "# c\n"}


def _tree(root):
    return {
        os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
        for folder, _, names in os.walk(root)
        for name in names
    }


def test_writes_every_file_into_a_new_folder(tmp_path):
    result = write_project(FILES, tmp_path / "proj")
    assert _tree(tmp_path / "proj") == set(FILES)
    assert (tmp_path / "proj" / "pkg" / "b.py").read_text() == "x = 1\n"
    assert result.written == sorted(FILES) and result.kept == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no temporary folder left


def test_empty_existing_folder_is_fine(tmp_path):
    (tmp_path / "proj" / "empty-subfolder").mkdir(parents=True)
    write_project(FILES, tmp_path / "proj")
    assert _tree(tmp_path / "proj") == set(FILES)


def test_non_empty_folder_is_refused_and_untouched(tmp_path):
    target = tmp_path / "proj"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as caught:
        write_project(FILES, target)
    assert str(target) in caught.value.render() and "--force" in caught.value.render()
    assert caught.value.exit_code == 2
    assert _tree(target) == {"notes.txt"}


def test_force_overwrites_generated_files_and_keeps_user_files(tmp_path):
    target = tmp_path / "proj"
    (target / "pkg").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "pkg" / "b.py").write_text("x = 'old'\n")
    result = write_project(FILES, target, force=True)
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "pkg" / "b.py").read_text() == "x = 1\n"
    assert result.kept == ["notes.txt"] and result.replaced == ["pkg/b.py"]
    assert _tree(target) == set(FILES) | {"notes.txt"}


def test_a_file_as_target_is_refused(tmp_path):
    (tmp_path / "proj").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        write_project(FILES, tmp_path / "proj")


def test_paths_outside_the_target_are_refused(tmp_path):
    with pytest.raises(OutputError, match="outside"):
        write_project({"../escape.txt": "x"}, tmp_path / "proj")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "proj").exists()


def test_failure_halfway_leaves_nothing(tmp_path, monkeypatch):
    """A write error after some files (disk full, say) removes the partial output."""
    import builtins

    real_open = builtins.open
    calls = {"n": 0}

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode:
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(28, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.raises(OutputError, match="No space left"):
        write_project(FILES, tmp_path / "proj")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "rel",
    [
        "/etc/passwd",
        "a/../../b",
        "../b",
        "./a",
        "a//b",
        "a/./b",
        "C:/x",
        "C:x",
        "a\\..\\b",
        "",
        "a\x00b",
    ],
)
def test_unsafe_relative_paths_are_refused_before_anything_is_written(tmp_path, rel):
    with pytest.raises(OutputError, match="outside the target"):
        write_project({"ok.txt": "x", rel: "y"}, tmp_path / "proj")
    assert list(tmp_path.iterdir()) == []


# Every call that changes the file system; the writer and tempfile/shutil/pathlib go through these.
CHANGES = ("mkdir", "rename", "replace", "link", "unlink", "rmdir")


def _fail_change(monkeypatch, failing: int | None) -> dict:
    """The `failing`-th change to the file system raises ENOSPC (a full disk at that point);
    None only counts them. Returns the counter."""
    calls = {"n": 0}

    def wrap(real):
        def change(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == failing:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)

        return change

    for name in CHANGES:
        monkeypatch.setattr(os, name, wrap(getattr(os, name)))
    return calls


def _snapshot(root):
    return {rel: (root / rel).read_bytes() for rel in _tree(root)}


def _force_fixture(tmp_path):
    target = tmp_path / "proj"
    (target / "pkg").mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    (target / "a.txt").write_text("old a")
    (target / "pkg" / "b.py").write_text("x = 'old'\n")
    return target


def _changes_in_a_full_run(tmp_path, monkeypatch) -> int:
    counter = _fail_change(monkeypatch, None)
    write_project(FILES, _force_fixture(tmp_path / "count"), force=True)
    monkeypatch.undo()
    return counter["n"]


def test_force_failure_at_every_step_restores_every_old_file(tmp_path, monkeypatch):
    """A failure at each change to the file system, one run per change: either the run fails
    and the folder is exactly as before, or the failure hit the final clean-up and the run
    succeeded; never a mixed tree, and no staging folder outlives the next run."""
    total = _changes_in_a_full_run(tmp_path, monkeypatch)
    assert total > 10  # staging, journal, moves aside, links, clean-up
    outcomes = []
    for failing in range(1, total + 1):
        root = tmp_path / f"run{failing}"
        target = _force_fixture(root)
        before = _snapshot(target)
        _fail_change(monkeypatch, failing)
        try:
            write_project(FILES, target, force=True)
            outcomes.append("succeeded")
        except OutputError as err:
            assert "No space left" in err.render()
            outcomes.append("failed")
        monkeypatch.undo()
        left = sorted(p.name for p in root.iterdir() if p.name != "proj")
        if outcomes[-1] == "failed":
            assert _snapshot(target) == before, failing
            assert not (target / "pkg" / "deep").exists(), failing  # made for a new file: gone
            assert left == [], failing  # a failed run cleans up after itself
        else:
            assert _snapshot(target) == {**before, **{k: v.encode() for k, v in FILES.items()}}
            # only a failure in the final clean-up can leave the committed run's folder
            assert all(".proj.scaffold-done-" in name for name in left), failing
        write_project(FILES, target, force=True)  # the next run cleans up whatever was left
        assert sorted(p.name for p in root.iterdir()) == ["proj"], failing
    assert "failed" in outcomes and outcomes[-1] == "succeeded"


def test_failure_removes_the_parent_folders_it_created(tmp_path, monkeypatch):
    _fail_change(monkeypatch, 4)  # new/deeper: ENOENT, new, new/deeper; then the staging folder
    with pytest.raises(OutputError):
        write_project(FILES, tmp_path / "new" / "deeper" / "proj")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_relative_targets_are_resolved_and_reported(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = write_project(FILES, "../sibling/./proj")
    assert result.target == tmp_path / "sibling" / "proj"
    assert result.target.is_absolute() and ".." not in result.target.parts
    assert _tree(tmp_path / "sibling" / "proj") == set(FILES)


def test_a_symlinked_target_is_written_where_it_points(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    result = write_project(FILES, tmp_path / "link")
    assert result.target == real and _tree(real) == set(FILES)


def test_force_never_writes_through_a_symlinked_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "proj"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "pkg").symlink_to(outside)
    with pytest.raises(OutputError, match="symbolic link"):
        write_project(FILES, target, force=True)
    assert list(outside.iterdir()) == []
    assert _tree(target) == {"notes.txt"} and (target / "pkg").is_symlink()


@pytest.mark.parametrize("blocker", ["folder-where-a-file-goes", "file-where-a-folder-goes"])
def test_force_refuses_to_replace_folders_or_files_of_the_other_kind(tmp_path, blocker):
    target = tmp_path / "proj"
    target.mkdir()
    if blocker == "folder-where-a-file-goes":
        (target / "a.txt").mkdir()
        (target / "a.txt" / "inside").write_text("mine")
    else:
        (target / "pkg").write_text("mine")
    before = _snapshot(target)
    with pytest.raises(OutputError, match="is a (folder|file), but scaffold"):
        write_project(FILES, target, force=True)
    assert _snapshot(target) == before


def test_force_keeps_user_files_in_generated_folders(tmp_path):
    target = tmp_path / "proj"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "mine.py").write_text("y = 2\n")
    result = write_project(FILES, target, force=True)
    assert (target / "pkg" / "mine.py").read_text() == "y = 2\n"
    assert result.kept == ["pkg/mine.py"]
