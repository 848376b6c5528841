"""Special files as inputs and outputs: only regular files go in, only regular files are replaced.

One catalogue: each case is a command line with FIFOs, devices and links in it, the exit code
and the exact first stderr line it must give, and it must give them at once (a watchdog fails
the case after a few seconds instead of letting a blocked open hang the suite). Nothing is
written, and every special file is still what it was.
"""

from __future__ import annotations

import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import torch_scaffold.convert as convert_pkg
from torch_scaffold.cli import main
from torch_scaffold.commands import _io
from torch_scaffold.convert.result import Conversion

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs POSIX FIFOs"
)

SCRIPT = "import torch\nfor epoch in range(2):\n    loss.backward()\n"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the current folder, with FIFOs, a script, a spec and links to them."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo")
    os.mkfifo("fifo.py")
    Path("train.py").write_text(SCRIPT)
    Path("spec.yaml").write_text("name: demo\n")
    os.symlink("fifo", "link-to-fifo.yaml")
    os.symlink("train.py", "link-to-train.py")
    Path("other.py").write_text("# someone's file\n")
    os.symlink("other.py", "link-to-other.py")
    return tmp_path


@pytest.fixture(autouse=True)
def fake_core(monkeypatch):
    """The converter core is not under test: a stand-in that always converts."""
    monkeypatch.setattr(
        convert_pkg,
        "convert_source",
        lambda source, name="<stdin>", partial=False: Conversion(code=f"# done\n{source}"),
    )


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    exit_code: int
    first_line: str  # the first line of stderr, exactly ("" for none)
    stdin: bytes | None = None


FIFO_SPEC = "is a FIFO (named pipe), not a regular file"
REPLACES_ONLY = "; scaffold convert replaces only regular files"

CASES = [
    # inputs: the spec
    Case("spec-fifo", ("new", "fifo", "--style", "pytorch"), 2, f"error: fifo: {FIFO_SPEC}"),
    Case(
        "spec-link-to-fifo",
        ("new", "link-to-fifo.yaml", "--style", "pytorch"),
        2,
        f"error: link-to-fifo.yaml: {FIFO_SPEC}",
    ),
    Case(
        "spec-dev-zero",
        ("new", "/dev/zero", "--style", "pytorch"),
        2,
        "error: /dev/zero: is a character device, not a regular file",
    ),
    Case("spec-check-fifo", ("spec", "check", "fifo"), 2, f"error: fifo: {FIFO_SPEC}"),
    # inputs: the script
    Case("script-fifo", ("convert", "fifo.py"), 2, f"error: fifo.py: {FIFO_SPEC}"),
    Case(
        "script-dev-zero",
        ("convert", "/dev/zero"),
        2,
        "error: /dev/zero: is a character device, not a regular file",
    ),
    Case(
        "script-dev-null",
        ("convert", "/dev/null"),
        2,
        "error: /dev/null: is a character device, not a regular file",
    ),
    Case("script-link-to-regular-file", ("convert", "link-to-train.py", "--stdout"), 0, ""),
    Case("stdin-still-works", ("convert", "-"), 0, "", SCRIPT.encode()),
    Case(
        "stdin-endless",
        ("convert", "-"),
        2,
        "error: <stdin>: input too large (over 1 MiB)",
        b"x" * (2 * 2**20),
    ),
    # outputs of convert
    Case(
        "convert-o-fifo",
        ("convert", "train.py", "-o", "fifo"),
        2,
        f"error: fifo: is a FIFO (named pipe){REPLACES_ONLY}",
    ),
    Case(
        "convert-o-fifo-force",
        ("convert", "train.py", "-o", "fifo", "--force"),
        2,
        f"error: fifo: is a FIFO (named pipe){REPLACES_ONLY}",
    ),
    Case(
        "convert-o-dev-stdout",
        ("convert", "train.py", "-o", "/dev/stdout"),
        2,
        f"error: /dev/stdout: is a symbolic link{REPLACES_ONLY}",
    ),
    Case(
        "convert-o-dev-null",
        ("convert", "train.py", "-o", "/dev/null"),
        2,
        f"error: /dev/null: is a character device{REPLACES_ONLY}",
    ),
    Case(
        "convert-o-link-to-a-file",
        ("convert", "train.py", "-o", "link-to-other.py"),
        2,
        f"error: link-to-other.py: is a symbolic link{REPLACES_ONLY}",
    ),
    Case(
        "convert-o-dangling-link",
        ("convert", "train.py", "-o", "dangling.py"),
        2,
        f"error: dangling.py: is a symbolic link{REPLACES_ONLY}",
    ),
    Case(
        "convert-default-output-is-a-fifo",
        ("convert", "fifo_src.py"),
        2,
        f"error: fifo_src_lightning.py: is a FIFO (named pipe){REPLACES_ONLY}",
    ),
    Case("convert-stdout-asked-for", ("convert", "fifo_src.py", "--stdout"), 0, ""),
    # outputs of new
    Case(
        "new-o-fifo",
        ("new", "--style", "pytorch", "-o", "fifo"),
        2,
        "error: {tmp}/fifo: exists and is not a folder",
    ),
    Case(
        "new-o-dev-null",
        ("new", "--style", "pytorch", "-o", "/dev/null"),
        2,
        "error: /dev/null: exists and is not a folder",
    ),
]


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung("the command blocked")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_special_files(case, workdir, monkeypatch):
    monkeypatch.setattr(_io, "MAX_SCRIPT_BYTES", 2**20)
    os.symlink("nowhere.py", "dangling.py")
    Path("fifo_src.py").write_text(SCRIPT)
    os.mkfifo("fifo_src_lightning.py")
    before = {p.name: (p.lstat().st_mode, p.lstat().st_ino) for p in workdir.iterdir()}
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        result = CliRunner().invoke(main, list(case.args), input=case.stdin)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not isinstance(result.exception, Hung), "blocked on a special file"
    assert "Traceback" not in result.output
    assert result.exit_code == case.exit_code, result.output
    lines = result.stderr.splitlines()
    first = lines[0] if lines and case.exit_code else ""
    assert first == case.first_line.format(tmp=workdir)
    if case.exit_code:
        assert lines[1].startswith("hint: ")
    after = {p.name: (p.lstat().st_mode, p.lstat().st_ino) for p in workdir.iterdir()}
    assert after == before  # nothing written, no special file replaced
    for name in ("fifo", "fifo.py", "fifo_src_lightning.py"):
        assert stat.S_ISFIFO(os.lstat(name).st_mode)
    assert Path("other.py").read_text() == "# someone's file\n"
