"""write_project under races and crashes: no data loss, one winner, never a mixed tree.

Three catalogues, each case naming its input and the exact outcome:

- INTERFERENCE: another program acts between staging and the first move (the `_staged` hook,
  so the timing is deterministic): the run is refused or succeeds, and the other program's
  files always survive.
- KEPT_FOLDERS: an existing target folder keeps its inode, mode and owner.
- CRASHES: the writing process is killed (os._exit in a forked child) at each change it makes
  to the file system; the next run's recovery leaves the target entirely as before or entirely
  written, and no staging folder is left once the next run is done.

Plus parallel runs into one fresh target: exactly one wins, the others exit 2.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from torch_scaffold.errors import OutputError
from torch_scaffold.generate import write, write_project
from torch_scaffold.generate.journal import recover

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork")

FILES = {"a.txt": "alpha\n", "pkg/b.py": "x = 1\n", "pkg/deep/c.md": "# c\n"}
CHANGES = ("mkdir", "rename", "replace", "link", "unlink", "rmdir")


def tree(root: Path) -> dict[str, bytes] | None:
    """Every file below root with its bytes; None when root does not exist."""
    if not root.exists():
        return None
    return {
        Path(folder, name).relative_to(root).as_posix(): Path(folder, name).read_bytes()
        for folder, _, names in os.walk(root)
        for name in names
    }


def strays(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".scaffold-" in p.name)


def written(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    return {**(extra or {}), **{rel: text.encode() for rel, text in FILES.items()}}


# --- another program acts between staging and the first move -------------------------------


@dataclass(frozen=True)
class Interference:
    name: str
    setup: str  # "absent", "empty" or "project" (a.txt, pkg/b.py and the user's notes.txt)
    act: Callable[[Path], None]  # what the other program does to the target, mid-run
    refused: str | None  # the error's text, or None: the run succeeds
    after: dict[str, bytes] | None  # the target's files afterwards (None: no folder)


def _write(rel: str, text: str = "mine\n") -> Callable[[Path], None]:
    def act(target: Path) -> None:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text(text)

    return act


OLD_PROJECT = {"a.txt": b"old a\n", "pkg/b.py": b"old b\n", "notes.txt": b"notes\n"}

INTERFERENCE = [
    Interference(
        "fresh-target-created-with-a-file",
        "absent",
        _write("README.md"),
        "the folder was created by another program while scaffold was writing",
        {"README.md": b"mine\n"},
    ),
    Interference(
        "fresh-target-created-empty",
        "absent",
        lambda target: target.mkdir(),
        "the folder was created by another program while scaffold was writing",
        {},
    ),
    Interference(
        "empty-target-gets-a-generated-name",
        "empty",
        _write("pkg/b.py"),
        "pkg/b.py was created by another program while scaffold was writing",
        {"pkg/b.py": b"mine\n"},
    ),
    Interference(
        "empty-target-gets-another-name",
        "empty",
        _write("notes.txt"),
        None,
        written({"notes.txt": b"mine\n"}),
    ),
    Interference(
        "force-target-gets-a-new-generated-name",
        "project",
        _write("pkg/deep/c.md"),
        "pkg/deep/c.md was created by another program while scaffold was writing",
        {**OLD_PROJECT, "pkg/deep/c.md": b"mine\n"},
    ),
    Interference(
        "force-target-loses-a-file-to-replace",
        "project",
        lambda target: (target / "a.txt").unlink(),
        None,
        written({"notes.txt": b"notes\n"}),
    ),
    Interference(
        "force-target-file-to-replace-becomes-a-folder",
        "project",
        lambda target: ((target / "a.txt").unlink(), _write("a.txt/inside")(target)),
        "a.txt was created by another program while scaffold was writing",
        {**{k: v for k, v in OLD_PROJECT.items() if k != "a.txt"}, "a.txt/inside": b"mine\n"},
    ),
    Interference(
        "force-target-file-to-replace-is-rewritten",  # --force replaces it: that is its job
        "project",
        _write("a.txt", "newer\n"),
        None,
        written({"notes.txt": b"notes\n"}),
    ),
]


def _prepare(root: Path, setup: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    target = root / "proj"
    if setup == "empty":
        target.mkdir()
    elif setup == "project":
        for rel, data in OLD_PROJECT.items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(data)
    return target


@pytest.mark.parametrize("case", INTERFERENCE, ids=[c.name for c in INTERFERENCE])
def test_interference_between_staging_and_moving(case, tmp_path, monkeypatch):
    target = _prepare(tmp_path, case.setup)
    monkeypatch.setattr(write, "_staged", case.act)
    if case.refused:
        with pytest.raises(OutputError) as caught:
            write_project(FILES, target, force=case.setup == "project")
        assert case.refused in caught.value.render()
        assert caught.value.exit_code == 2
    else:
        write_project(FILES, target, force=case.setup == "project")
    assert tree(target) == case.after
    assert strays(tmp_path) == []


# --- an existing folder is kept: inode, mode, owner ---------------------------------------


def _inode_mode_owner(path: Path) -> tuple[int, int, int, int]:
    info = path.stat()
    return info.st_ino, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


@dataclass(frozen=True)
class KeptFolder:
    name: str
    prepare: Callable[[Path], None]  # makes the (empty) target folder its own way


def _chmod(mode: int) -> Callable[[Path], None]:
    def prepare(target: Path) -> None:
        target.mkdir()
        target.chmod(mode)

    return prepare


def _chown(target: Path) -> None:
    target.mkdir()
    os.chown(target, 4321, 4321)


def _with_empty_subfolder(target: Path) -> None:
    (target / "pkg").mkdir(parents=True)
    (target / "pkg").chmod(0o700)


KEPT_FOLDERS = [
    KeptFolder("setgid-2750", _chmod(0o2750)),
    KeptFolder("private-0700", _chmod(0o700)),
    KeptFolder("other-owner", _chown),
    KeptFolder("empty-subfolder-kept-too", _with_empty_subfolder),
]


@pytest.mark.parametrize("case", KEPT_FOLDERS, ids=[c.name for c in KEPT_FOLDERS])
def test_an_existing_empty_folder_keeps_inode_mode_and_owner(case, tmp_path):
    if case.name == "other-owner" and os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    target = tmp_path / "proj"
    case.prepare(target)
    folders = [target, *[p for p in target.rglob("*") if p.is_dir()]]
    before = {p: _inode_mode_owner(p) for p in folders}
    write_project(FILES, target)
    assert {p: _inode_mode_owner(p) for p in folders} == before
    assert tree(target) == written()
    assert strays(tmp_path) == []


def test_dash_o_dot_keeps_the_current_folder(tmp_path, monkeypatch):
    """`scaffold new -o .` in an empty folder: the shell's current folder is not replaced."""
    from click.testing import CliRunner

    from torch_scaffold.cli import main

    here = tmp_path / "here"
    here.mkdir()
    here.chmod(0o2750)
    before = _inode_mode_owner(here)
    monkeypatch.chdir(here)
    result = CliRunner().invoke(main, ["new", "--style", "pytorch", "-o", "."])
    assert result.exit_code == 0, result.output
    assert _inode_mode_owner(here) == before
    assert os.stat(".").st_ino == before[0]  # still inside the same folder
    assert (here / "tabular_classifier" / "train.py").is_file()
    assert strays(tmp_path) == []


# --- killed at each change to the file system ------------------------------------------------

CRASHED = 86


def _run_child(
    target: Path, crash_at: int | None, force: bool, crash_in: str | None = None
) -> tuple[int, int]:
    """Fork; the child writes FILES and os._exit()s at its crash_at-th change to the file
    system (or on its first call of write.<crash_in>), like kill -9: no clean-up runs.
    Returns (exit code, changes the child made)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            count = [0]

            def wrap(real):
                def change(*args, **kwargs):
                    count[0] += 1
                    if count[0] == crash_at:
                        os.write(write_end, str(count[0]).encode())
                        os._exit(CRASHED)
                    return real(*args, **kwargs)

                return change

            for name in CHANGES:
                setattr(os, name, wrap(getattr(os, name)))
            if crash_in:
                setattr(write, crash_in, lambda *args: os._exit(CRASHED))
            write_project(FILES, target, force=force)
            os.write(write_end, str(count[0]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        changes = int(pipe.read() or 0)
    return os.waitstatus_to_exitcode(status), changes


@dataclass(frozen=True)
class CrashCase:
    name: str
    setup: str  # as in _prepare
    force: bool


CRASHES = [
    CrashCase("fresh-target", "absent", False),
    CrashCase("existing-empty-target", "empty", False),
    CrashCase("force-over-a-project", "project", True),
]


@pytest.mark.parametrize("case", CRASHES, ids=[c.name for c in CRASHES])
def test_a_crash_at_any_step_is_undone_by_the_next_run(case, tmp_path):
    code, total = _run_child(_prepare(tmp_path / "count", case.setup), None, case.force)
    assert code == 0 and total > 8
    old_user_files = {"notes.txt": b"notes\n"} if case.setup == "project" else {}
    for crash_at in range(1, total + 1):
        root = tmp_path / f"crash{crash_at}"
        target = _prepare(root, case.setup)
        before = tree(target)
        inode = target.stat().st_ino if target.exists() else None
        code, _ = _run_child(target, crash_at, case.force)
        assert code == CRASHED, (crash_at, code)
        # The next run first recovers: entirely as before, or entirely written (a crash after
        # the commit), never a mix of the two.
        notes = recover(target.resolve(), locked=True)
        state = tree(target)
        assert state in (before, written(old_user_files)), (crash_at, state)
        assert strays(root) == [], crash_at
        assert notes or state == before  # something was undone or removed
        if case.setup == "empty":
            assert target.stat().st_ino == inode, crash_at
        # ... and then writes.
        write_project(FILES, target, force=case.force or state != before)
        assert tree(target) == written(old_user_files), crash_at
        assert strays(root) == [], crash_at


def test_the_next_run_reports_what_it_recovered(tmp_path):
    target = _prepare(tmp_path, "project")
    code, _ = _run_child(target, None, True, crash_in="mark_committed")  # every file moved in
    assert code == CRASHED and tree(target) == written({"notes.txt": b"notes\n"})
    result = write_project(FILES, target, force=True)
    assert result.recovered == [
        "rolled back an interrupted earlier run: the folder is as it was before that run"
    ]
    assert result.replaced == ["a.txt", "pkg/b.py"]  # the old files were back before the run
    assert tree(target) == written({"notes.txt": b"notes\n"})


def test_an_old_file_that_cannot_be_put_back_is_kept_and_named(tmp_path):
    """Killed after moving a.txt aside; then someone writes a.txt. The next run does not
    overwrite that file, keeps the old one in the staging folder and names it (exit 2)."""
    target = _prepare(tmp_path, "project")
    code, _ = _run_child(target, None, True, crash_in="_link_new")  # a.txt is aside
    assert code == CRASHED and not (target / "a.txt").exists()
    (target / "a.txt").write_text("written meanwhile\n")
    with pytest.raises(OutputError) as caught:
        write_project(FILES, target, force=True)
    [staging] = strays(tmp_path)
    error, hint = caught.value.render().splitlines()
    assert error == (
        f"error: {target}: an interrupted write could not be undone: a.txt changed since it"
        f" began; the files it replaced are kept in {tmp_path / staging / 'old'}"
    )
    assert hint == (
        f"hint: compare them, keep what you need, delete {tmp_path / staging}, then run again"
    )
    assert (tmp_path / staging / "old" / "a.txt").read_text() == "old a\n"
    assert tree(target) == {**OLD_PROJECT, "a.txt": b"written meanwhile\n"}


def test_recovery_never_touches_a_live_runs_folder_without_the_lock(tmp_path):
    """Where flock is missing, a staging folder whose pid is alive belongs to a live run."""
    staging = tmp_path / f".proj.scaffold-{os.getpid()}-abc"
    (staging / "new").mkdir(parents=True)
    (staging / "new" / "a.txt").write_text("staged")
    assert recover(tmp_path / "proj", locked=False) == []
    assert (staging / "new" / "a.txt").exists()


def test_an_older_scaffolds_leftover_with_replaced_files_is_reported_not_deleted(tmp_path):
    """scaffold < this version kept replaced files in `.replaced/` and wrote no journal."""
    leftover = tmp_path / ".proj.scaffold-k2j4h5"
    (leftover / ".replaced").mkdir(parents=True)
    (leftover / ".replaced" / "a.txt").write_text("the user's old a.txt")
    with pytest.raises(OutputError, match="holds files that may be yours: .replaced/a.txt"):
        write_project(FILES, tmp_path / "proj")
    assert (leftover / ".replaced" / "a.txt").read_text() == "the user's old a.txt"
    assert not (tmp_path / "proj").exists()


# --- parallel runs into one fresh target -----------------------------------------------------


def _parallel(target: Path, runs: int, locked: bool) -> list[tuple[int, bytes]]:
    """`runs` forked children write into target at once (released together through a pipe);
    child i writes a.txt = "child i". Returns (exit code, stderr-ish message) per child."""
    gate_read, gate_write = os.pipe()
    children = []
    for i in range(runs):
        out_read, out_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(gate_write)
                if not locked:
                    write.folder_lock = _no_lock
                files = {**FILES, "a.txt": f"child {i}\n"}
                os.read(gate_read, 1)
                try:
                    write_project(files, target)
                    code = 0
                except OutputError as err:
                    os.write(out_write, err.render().encode())
                    code = err.exit_code
            finally:
                os._exit(code)
        os.close(out_write)
        children.append((pid, out_read))
    os.write(gate_write, b"x" * runs)
    results = []
    for pid, out_read in children:
        _, status = os.waitpid(pid, 0)
        with os.fdopen(out_read, "rb") as pipe:
            results.append((os.waitstatus_to_exitcode(status), pipe.read()))
    os.close(gate_read)
    os.close(gate_write)
    return results


def _no_lock(folder, target, wait=0):
    from contextlib import nullcontext

    return nullcontext(False)


def test_parallel_runs_into_one_fresh_target_have_exactly_one_winner(tmp_path):
    target = tmp_path / "proj"
    results = _parallel(target, 6, locked=True)
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2, 2, 2, 2], results
    winner = next(i for i, (code, _) in enumerate(results) if code == 0)
    assert tree(target) == {**written(), "a.txt": f"child {winner}\n".encode()}
    for code, message in results:
        if code == 2:
            assert message.startswith(f"error: {target}: folder is not empty".encode()), message
    assert strays(tmp_path) == []


def test_parallel_runs_without_the_lock_never_lose_or_mix_files(tmp_path):
    """Where flock is missing, the atomic claims alone hold: at most one run succeeds (two
    runs may also both fail), the tree is one run's files or nothing, and all else exits 2."""
    for attempt in range(5):
        target = tmp_path / f"proj{attempt}"
        results = _parallel(target, 6, locked=False)
        codes = [code for code, _ in results]
        assert set(codes) <= {0, 2} and codes.count(0) <= 1, results
        if 0 in codes:
            winner = codes.index(0)
            assert tree(target) == {**written(), "a.txt": f"child {winner}\n".encode()}
        else:
            assert not tree(target), results
        assert strays(tmp_path) == []


def test_parallel_scaffold_new_processes_one_winner(tmp_path):
    """The real command, three processes at once: one writes, two exit 2 with an error line."""
    target = tmp_path / "proj"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "torch_scaffold", "new", "--style", "pytorch"]
    processes = [
        subprocess.Popen(
            [*command, "-o", str(target)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read().decode()) for p in processes]
    for p in processes:
        p.stdout.close()
        p.stderr.close()
    assert sorted(code for code, _ in outcomes) == [0, 2, 2], outcomes
    for code, err in outcomes:
        assert "Traceback" not in err
        if code == 2:
            assert err.startswith(f"error: {target}: ") and "\nhint: " in err, err
    assert (target / "tabular_classifier" / "train.py").is_file()
    assert strays(tmp_path) == []
