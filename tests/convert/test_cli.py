"""`scaffold convert` command: options, output files, report and exit codes.

Most tests replace the converter core with a small fake (fast, no libcst), so they test the
command's own behaviour: what is read, written, printed, and which exit code comes back.
The last few run the real core on a small script.
"""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

import torch_scaffold.convert as convert_pkg
from torch_scaffold.cli import main
from torch_scaffold.commands import _io
from torch_scaffold.commands.convert import format_report, verify_command
from torch_scaffold.convert.result import Conversion, ReportEntry

from .conftest import EXAMPLES

SCRIPT = """\
import torch

model = torch.nn.Linear(2, 1)  # the model
for epoch in range(3):
    loss = model(torch.ones(2)).sum()
    loss.backward()
"""


def fake_convert_source(
    source: str, filename: str = "<stdin>", *, partial: bool = False, style=None
):
    """Stands in for the core. Markers in the source choose what it does."""
    lines = source.splitlines()

    def line_of(word):
        return next((i for i, text in enumerate(lines, 1) if word in text), None)

    if "import pytorch_lightning" in source:
        return Conversion(code=None, already_lightning=True)
    if "CRASH" in source:
        raise KeyError("roles")
    if "INTERNAL" in source:  # the core caught its own bug and says so
        return Conversion(code=None, entries=[ReportEntry("internal error", "StopIteration")])
    if "BROKEN_OUTPUT" in source:
        return Conversion(code="def broken(:\n", entries=[ReportEntry("moved", "x", 1)])
    if "LEAKY_REFUSAL" in source:  # a refusal that still carries code, without --partial
        entries = [ReportEntry("refused", "hogwild multiprocessing", line_of("LEAKY"))]
        return Conversion(code=f"# TODO(scaffold): hogwild\n{source}", entries=entries)
    if "KEEP_EMA" in source:
        code = f"# TODO(scaffold): check the EMA update\n{source}"
        return Conversion(code=code, entries=[ReportEntry("todo", "EMA update kept", 2)])
    if "REFUSE" in source:
        at = line_of("REFUSE")
        entries = [
            ReportEntry("moved", "loop -> training_step", 4, 6),
            ReportEntry("refused", "manual parameter update without an optimizer", at),
        ]
        code = f"# TODO(scaffold): convert line {at} by hand\n{source}" if partial else None
        return Conversion(code=code, entries=entries)
    code = f"# converted from {filename}\n{source}"
    return Conversion(
        code=code,
        entries=[
            ReportEntry("removed", "loss.backward()", line_of("backward")),
            ReportEntry("moved", "for-epoch loop -> training_step", 4, 6),
            ReportEntry("kept", "model class"),
        ],
    )


@pytest.fixture
def fake_core(monkeypatch):
    monkeypatch.setattr(convert_pkg, "convert_source", fake_convert_source)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return path


def invoke(*args, input=None):
    result = CliRunner().invoke(main, ["convert", *map(str, args)], input=input)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def unstamped(path):
    """The written file without its last line, the `# scaffold convert: ...` stamp."""
    data = path.read_bytes()
    body, _, stamp = data.rstrip(b"\n").rpartition(b"\n")
    assert stamp.startswith(b"# scaffold convert: from "), stamp
    return body + b"\n"


# --- converting to a file ------------------------------------------------------------------


def test_default_output_is_written_beside_the_input(fake_core, script):
    result = invoke(script)
    out = script.with_name("train_lightning.py")
    assert result.exit_code == 0, result.output
    assert unstamped(out).decode() == f"# converted from {script}\n{SCRIPT}"
    assert script.read_text() == SCRIPT
    assert f"wrote {out}" in result.stdout


def test_report_lists_every_entry_with_file_and_line(fake_core, script):
    result = invoke(script)
    report = result.stdout.splitlines()
    assert report[0] == f"{script} -> {script.with_name('train_lightning.py')}"
    # grouped by kind in a fixed order: moved, removed, kept
    assert report[1] == f"  {script}:4-6: moved: for-epoch loop -> training_step"
    assert report[2] == f"  {script}:6: removed: loss.backward()"
    assert report[3] == "  kept: model class"
    assert "summary: 1 moved, 1 removed, 1 kept" in result.stdout


@pytest.mark.parametrize(
    ("options", "command"),
    [
        ((), "scaffold convert train.py --verify"),
        (("-o", "my out.py"), "scaffold convert train.py -o 'my out.py' --verify"),
        (("--stdout",), "scaffold convert train.py --stdout --verify"),
        (("--check",), "scaffold convert train.py --verify"),
    ],
)
def test_the_report_ends_with_the_command_that_verifies_it(
    fake_core, script, monkeypatch, options, command
):
    monkeypatch.chdir(script.parent)
    result = invoke("train.py", *options)
    report = result.stderr if "--stdout" in options else result.stdout
    assert report.splitlines()[-1] == f"verify with: {command}"
    script.write_text(SCRIPT + "# REFUSE\n")  # a refusal is no conversion to verify
    for partial in ((), ("--partial",)):
        refused = invoke("train.py", "--force", *options, *partial)
        assert refused.exit_code == 3 and "verify with:" not in refused.output


def test_the_verify_command_keeps_the_options_given():
    assert verify_command("t.py", None, False, ("--lr", "0.1 x"), "all", 60, "/py") == (
        "scaffold convert t.py --verify --steps all --timeout 60 --python /py -- --lr '0.1 x'"
    )
    assert verify_command("t.py", None, False, (), 20, 600, None) == (
        "scaffold convert t.py --verify"
    )


def test_explicit_output_path(fake_core, script, tmp_path):
    out = tmp_path / "sub" / "lit.py"
    out.parent.mkdir()
    result = invoke(script, "-o", out)
    assert result.exit_code == 0
    assert out.read_text().startswith("# converted")
    assert not script.with_name("train_lightning.py").exists()


def test_rerun_replaces_previous_output(fake_core, script):
    out = script.with_name("train_lightning.py")
    assert invoke(script).exit_code == 0
    script.write_text(SCRIPT + "# changed\n")
    result = invoke(script)
    assert result.exit_code == 0
    assert unstamped(out).decode().endswith("# changed\n")
    assert f"replaced {out}" in result.stdout


def test_output_keeps_the_input_file_permissions(fake_core, script):
    script.chmod(0o750)
    invoke(script)
    mode = stat.S_IMODE(script.with_name("train_lightning.py").stat().st_mode)
    assert mode == 0o750


def test_output_equal_to_input_is_refused(fake_core, script):
    result = invoke(script, "-o", script)
    assert result.exit_code == 2
    assert "never modifies its input" in result.stderr
    assert script.read_text() == SCRIPT


def test_output_equal_to_input_through_a_relative_path_or_link_is_refused(
    fake_core, script, monkeypatch
):
    monkeypatch.chdir(script.parent)
    (script.parent / "link.py").symlink_to(script)
    for alias in ("./train.py", "link.py"):
        result = invoke("train.py", "-o", alias)
        assert result.exit_code == 2
        assert "never modifies its input" in result.stderr
    assert script.read_text() == SCRIPT


@pytest.mark.parametrize("where", ["missing/out.py", "."])
def test_unwritable_output_location_is_bad_usage(fake_core, script, tmp_path, where):
    result = invoke(script, "-o", tmp_path / where)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "hint: " in result.stderr
    assert listing(tmp_path) == ["train.py"]


def test_failed_write_leaves_no_temp_file_and_keeps_old_output(fake_core, script, monkeypatch):
    out = script.with_name("train_lightning.py")
    out.write_text("previous")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io.os, "replace", disk_full)
    result = invoke(script, "--force")  # "previous" was not written by scaffold
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr
    assert out.read_text() == "previous"
    assert listing(script.parent) == ["train.py", "train_lightning.py"]


# --- --diff, --check, --stdout, stdin -----------------------------------------------------


def test_diff_prints_unified_diff_and_writes_nothing(fake_core, script):
    result = invoke(script, "--diff")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:3] == [
        f"--- {script}",
        f"+++ {script.with_name('train_lightning.py')}",
        "@@ -1,3 +1,4 @@",  # one added line, three lines of context
    ]
    assert f"+# converted from {script}" in result.stdout
    assert "moved: for-epoch loop" in result.stderr  # report kept off stdout
    assert listing(script.parent) == ["train.py"]


def test_check_reports_and_exits_1_when_there_is_work(fake_core, script):
    result = invoke(script, "--check")
    assert result.exit_code == 1
    assert "moved: for-epoch loop -> training_step" in result.stdout
    assert "would write" in result.stdout
    assert listing(script.parent) == ["train.py"]


def test_check_exits_0_when_already_lightning(fake_core, tmp_path):
    path = tmp_path / "lit.py"
    path.write_text("import pytorch_lightning as pl\n")
    result = invoke(path, "--check")
    assert result.exit_code == 0
    assert "already uses PyTorch Lightning" in result.stdout


def test_stdout_prints_only_the_code(fake_core, script):
    result = invoke(script, "--stdout")
    assert result.exit_code == 0
    assert result.stdout == f"# converted from {script}\n{SCRIPT}"
    assert "summary:" in result.stderr
    assert listing(script.parent) == ["train.py"]


def test_dash_o_dash_means_stdout(fake_core, script):
    result = invoke(script, "-o", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("# converted")
    assert listing(script.parent) == ["train.py"]


def test_stdin_input_prints_to_stdout(fake_core, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("-", input=SCRIPT)
    assert result.exit_code == 0
    assert result.stdout == f"# converted from <stdin>\n{SCRIPT}"
    assert "<stdin>:6: removed: loss.backward()" in result.stderr
    assert listing(tmp_path) == []


def test_stdin_input_with_output_file(fake_core, tmp_path):
    out = tmp_path / "out.py"
    result = invoke("-", "-o", out, input=SCRIPT)
    assert result.exit_code == 0
    assert out.read_text().startswith("# converted from <stdin>")


@pytest.mark.parametrize(
    "flags", [["--diff", "--check"], ["--stdout", "--diff"], ["--check", "--stdout"]]
)
def test_conflicting_modes_are_bad_usage(fake_core, script, flags):
    result = invoke(script, *flags)
    assert result.exit_code == 2
    assert "cannot be combined" in result.stderr
    assert listing(script.parent) == ["train.py"]


def test_output_file_and_stdout_conflict(fake_core, script, tmp_path):
    result = invoke(script, "--stdout", "-o", tmp_path / "x.py")
    assert result.exit_code == 2
    assert "-o and --stdout" in result.stderr


# --- already Lightning, refusals, --partial, internal errors ------------------------------


def test_already_lightning_writes_nothing_and_exits_0(fake_core, tmp_path):
    path = tmp_path / "lit.py"
    path.write_text("import pytorch_lightning as pl\n")
    result = invoke(path)
    assert result.exit_code == 0
    assert "already uses PyTorch Lightning" in result.stdout
    assert listing(tmp_path) == ["lit.py"]


def test_refusal_prints_reasons_with_lines_and_writes_nothing(fake_core, tmp_path):
    path = tmp_path / "rl.py"
    path.write_text(SCRIPT + "p.data -= 0.1 * p.grad  # REFUSE\n")
    result = invoke(path)
    assert result.exit_code == 3
    assert f"{path}:7: refused: manual parameter update without an optimizer" in result.output
    assert result.stderr.startswith(f"error: {path}:7: conversion refused: manual parameter")
    assert "--partial" in result.stderr
    assert listing(tmp_path) == ["rl.py"]


def test_partial_writes_todo_markers_and_still_exits_3(fake_core, tmp_path):
    path = tmp_path / "rl.py"
    path.write_text(SCRIPT + "p.data -= 0.1 * p.grad  # REFUSE\n")
    result = invoke(path, "--partial")
    out = tmp_path / "rl_lightning.py"
    assert result.exit_code == 3
    assert out.read_text().startswith("# TODO(scaffold): convert line 7 by hand")
    assert "partial result with 1 # TODO(scaffold) marker(s) written to" in result.stderr


def test_partial_to_stdout_prints_code_and_exits_3(fake_core, tmp_path):
    path = tmp_path / "rl.py"
    path.write_text(SCRIPT + "# REFUSE\n")
    result = invoke(path, "--partial", "--stdout")
    assert result.exit_code == 3
    assert result.stdout.startswith("# TODO(scaffold)")
    assert listing(tmp_path) == ["rl.py"]


def test_check_on_refused_script_exits_3(fake_core, tmp_path):
    path = tmp_path / "rl.py"
    path.write_text(SCRIPT + "# REFUSE\n")
    assert invoke(path, "--check").exit_code == 3


def test_refusal_without_partial_never_writes_even_if_core_returns_code(fake_core, tmp_path):
    path = tmp_path / "hog.py"
    path.write_text(SCRIPT + "# LEAKY_REFUSAL\n")
    result = invoke(path)
    assert result.exit_code == 3
    assert "nothing written" in result.stderr
    assert listing(tmp_path) == ["hog.py"]


def test_todo_markers_without_refusal_convert_with_a_warning(fake_core, tmp_path):
    path = tmp_path / "ema.py"
    path.write_text(SCRIPT + "# KEEP_EMA\n")
    result = invoke(path)
    assert result.exit_code == 0
    assert f"{path}:2: todo: EMA update kept" in result.stdout
    assert "warning: 1 part(s) kept with # TODO(scaffold) markers" in result.stderr
    assert (tmp_path / "ema_lightning.py").read_text().startswith("# TODO(scaffold)")


def test_converter_crash_is_an_internal_error_not_a_traceback(fake_core, tmp_path):
    path = tmp_path / "boom.py"
    path.write_text(SCRIPT + "# CRASH\n")
    result = invoke(path)
    assert result.exit_code == 5
    assert result.stderr.startswith(
        f"error: {path}: internal converter error (a bug, not a refusal): KeyError: 'roles'"
    )
    assert "please report it" in result.stderr.lower()
    assert listing(tmp_path) == ["boom.py"]


@pytest.mark.parametrize("extra", [(), ("--partial",), ("--check",)])
def test_internal_error_from_the_core_is_never_a_refusal(fake_core, tmp_path, extra):
    path = tmp_path / "boom.py"
    path.write_text(SCRIPT + "# INTERNAL\n")
    result = invoke(path, *extra)
    assert result.exit_code == 5
    assert "internal converter error (a bug, not a refusal): StopIteration" in result.stderr
    assert "refused" not in result.output
    assert "hint: this is a bug in scaffold" in result.stderr
    assert listing(tmp_path) == ["boom.py"]


def test_converted_code_that_does_not_compile_is_never_written(fake_core, tmp_path):
    path = tmp_path / "t.py"
    path.write_text(SCRIPT + "# BROKEN_OUTPUT\n")
    result = invoke(path)
    assert result.exit_code == 5
    assert "does not compile" in result.stderr
    assert listing(tmp_path) == ["t.py"]


# --- bad input: exit 2, one error line + hint, nothing written ----------------------------


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b"", "the script is empty", None),
        (b"\n  \n", "the script is empty", None),
        (b"x = 1\n\x00\x01\x02", "binary file (NUL byte at offset 6)", None),
        (b"x = 1\ny = 'caf\xe9'\n", "not valid utf-8 text (byte 0xe9 on line 2)", 2),
        (b"import torch\ndef f(:\n    pass\n", "syntax error: invalid syntax", 2),
        (b"for i in range(3):\nprint(i)\n", "syntax error: expected an indented block", 2),
        (b"import torch\nprint 'loss', 1.0\n", "Python 2 is not supported", 2),
        (b"try:\n    x = 1\nexcept ValueError, e:\n    pass\n", "Python 2 is not supported", 3),
        (b"x = 1\nraise ValueError, 'bad'\n", "Python 2 is not supported", 2),
        (b"n = 10L\n", "Python 2 is not supported", 1),
        (b"if 1 <> 2:\n    pass\n", "Python 2 is not supported", 1),
        (b"# -*- coding: klingon -*-\nx = 1\n", "unknown encoding", None),
    ],
)
def test_bad_input_is_exit_2_with_location_and_hint(fake_core, tmp_path, content, message, line):
    path = tmp_path / "bad.py"
    path.write_bytes(content)
    result = invoke(path)
    assert result.exit_code == 2, result.output
    first, second = result.stderr.splitlines()
    where = f"{path}:{line}" if line else f"{path}"
    assert first.startswith(f"error: {where}: "), first
    assert message in first
    assert second.startswith("hint: ")
    assert listing(tmp_path) == ["bad.py"]


def test_declared_latin1_encoding_is_read_and_kept(fake_core, tmp_path):
    path = tmp_path / "old.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")
    result = invoke(path)
    assert result.exit_code == 0
    assert unstamped(tmp_path / "old_lightning.py").endswith(b"name = 'caf\xe9'\n")


def test_missing_file(fake_core, tmp_path):
    result = invoke(tmp_path / "nope.py")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.py'}: no such file")


def test_directory_as_script(fake_core, tmp_path):
    result = invoke(tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(fake_core, script):
    script.chmod(0)
    result = invoke(script)
    assert result.exit_code == 2
    assert "permission denied" in result.stderr


def test_oversized_file(fake_core, tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "MAX_SCRIPT_BYTES", 100)
    path = tmp_path / "big.py"
    path.write_text("x = 1\n" * 50)
    result = invoke(path)
    assert result.exit_code == 2
    assert "file too large" in result.stderr


def test_report_orders_kinds_and_lines():
    conversion = Conversion(
        code="x",
        entries=[
            ReportEntry("todo", "EMA kept", 30),
            ReportEntry("moved", "b", 20),
            ReportEntry("moved", "a", 10, 12),
            ReportEntry("removed", "model.train()", 15),
        ],
    )
    assert format_report(conversion, "t.py", "t_lightning.py").splitlines() == [
        "t.py -> t_lightning.py",
        "  t.py:10-12: moved: a",
        "  t.py:20: moved: b",
        "  t.py:15: removed: model.train()",
        "  t.py:30: todo: EMA kept",
        "summary: 2 moved, 1 removed, 1 todo",
    ]


# --- the real core -------------------------------------------------------------------------


def test_real_core_converts_an_example_script(tmp_path):
    source = EXAMPLES / "mlp_classifier_argparse.py"
    path = tmp_path / source.name
    path.write_text(source.read_text())
    result = invoke(path)
    assert result.exit_code == 0, result.output
    code = (tmp_path / "mlp_classifier_argparse_lightning.py").read_text()
    compile(code, "converted", "exec")
    assert "LightningModule" in code
    assert "training_step" in result.stdout


def test_real_core_leaves_lightning_scripts_alone(tmp_path):
    path = tmp_path / "lit.py"
    path.write_text("import pytorch_lightning as pl\n\n\nclass M(pl.LightningModule):\n    pass\n")
    result = invoke(path)
    assert result.exit_code == 0
    assert "already uses PyTorch Lightning" in result.stdout
    assert listing(tmp_path) == ["lit.py"]


def test_real_core_refuses_manual_updates_without_optimizer(tmp_path):
    path = tmp_path / "sgd_by_hand.py"
    path.write_text(
        "import torch\n\n"
        "w = torch.zeros(3, requires_grad=True)\n"
        "x = torch.randn(16, 3)\n"
        "for step in range(10):\n"
        "    loss = ((x @ w) - 1.0).pow(2).mean()\n"
        "    loss.backward()\n"
        "    with torch.no_grad():\n"
        "        w -= 0.1 * w.grad\n"
        "        w.grad.zero_()\n"
    )
    result = invoke(path)
    assert result.exit_code == 3, result.output
    assert "refused" in result.output
    assert listing(tmp_path) == ["sgd_by_hand.py"]


def test_real_core_reports_python2_from_stdin():
    result = invoke("-", input="print 'hello'\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: <stdin>:1: Python 2 is not supported")


def test_help_documents_exit_codes():
    result = CliRunner().invoke(main, ["convert", "--help"])
    assert result.exit_code == 0
    for text in ("Exit codes:", "--partial", "still 3", "internal converter error"):
        assert text in result.output
