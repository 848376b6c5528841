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
