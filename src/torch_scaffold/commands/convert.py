"""`scaffold convert`: read a script, run the pure converter, print the report, write the result.

Everything that touches files or the terminal lives here; the conversion itself is
torch_scaffold.convert.convert_source (source text -> Conversion). Exit codes:

    0  converted (or nothing to do: the script already uses Lightning)
    1  --check: there is work to do
    2  bad input or usage: missing/unreadable/binary/non-UTF-8 file, a FIFO or device, syntax
       error, Python 2, a script too large to convert (convert/limits.py), conflicting options, an output path that cannot be written, or an
       existing output that scaffold did not write or that was edited since (without --force)
    3  refused: the script has constructs that cannot be converted safely. Also with --partial,
       after the partial result (with `# TODO(scaffold)` markers) was written, so a CI job never
       mistakes an incomplete conversion for a finished one.
    4  --verify: the converted script trains differently: a loss differs, or it fails or
       stops where the original goes on. The output stays written, for review.
    5  internal error: the converter itself failed (a bug in scaffold, not a verdict on the
       script). Nothing was written; the message says where it failed, to report it.
    6  --verify could not compare: the original script failed or ended without a loss, or a
       run timed out (--timeout). The output stays written.
    130, 143  --verify stopped by SIGINT (Ctrl-C) or SIGTERM: the runs' process groups are
       killed and their scratch folders removed. The output stays written.

A notebook (.ipynb) converts to a notebook (<stem>_lightning.ipynb): see convert/notebook.py.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import shlex
import stat
import sys
from pathlib import Path

import click

from torch_scaffold.commands._io import (
    MAX_SCRIPT_BYTES,
    decode_source,
    file_mode,
    read_limited,
    read_script,
    write_atomic,
)
from torch_scaffold.commands._stamp import EDITED, FOREIGN, provenance, stamped
from torch_scaffold.convert.limits import check_size
from torch_scaffold.convert.result import KINDS as REPORT_ORDER
from torch_scaffold.convert.result import TODO
from torch_scaffold.errors import (
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    ConversionRefused,
    OutputError,
    ScaffoldError,
    ScriptError,
    VerifyIncomplete,
    VerifyMismatch,
)
from torch_scaffold.regular_file import FileTooLarge, NotRegularFile, kind_of

STDIN = "-"
STDIN_NAME = "<stdin>"
TODO_MARKER = "# TODO(scaffold)"

# Python 2 syntax: CPython's own messages for it, and patterns for the failing line when CPython
# only says "invalid syntax". Checked only after the file failed to parse as Python 3.
_PY2_MESSAGES = (
    "Missing parentheses in call to",
    "multiple exception types must be parenthesized",
    "leading zeros in decimal integer literals",
    "Function parameters cannot be parenthesized",
)
_PY2_LINE = re.compile(
    r"""^\s*(?:print|exec)\s+(?:[^\s(=.,)\]]|>>)   # print "x" / print >>f, x / exec code
      | ^\s*raise\s+[\w.]+\s*,                     # raise E, "message"
      | `[^`\n]+`                                   # backtick repr
      | <>                                         # old inequality
      | \b\d+[lL]\b                                 # long literal 10L
      | \b[uU][rR]["\']                              # ur"..." strings
    """,
    re.VERBOSE,
)


def run_convert(
    script: str,
    output: str | None = None,
    show_diff: bool = False,
    check_only: bool = False,
    to_stdout: bool = False,
    partial: bool = False,
    force: bool = False,
    verify: bool = False,
    steps: int | str = 20,
    timeout: float = 600.0,
    python: str | None = None,
    script_args: tuple[str, ...] = (),
) -> int:
    """Convert SCRIPT; return the exit code. User errors are raised as ScaffoldError."""
    _check_options(output, show_diff, check_only, to_stdout)
    from_stdin = script == STDIN
    again = None  # the report's last line: the command that verifies this conversion
    if not from_stdin:
        again = verify_command(script, output, to_stdout, script_args, steps, timeout, python)
    steps = _check_verify_options(verify, check_only, from_stdin, script_args, steps, timeout)
    name = STDIN_NAME if from_stdin else script
    is_notebook = not from_stdin and script.lower().endswith(".ipynb")
    # stdin has no "beside the input": like other filters, print to stdout unless -o says where.
    to_stdout = to_stdout or output == STDIN or (from_stdin and output is None)
    target = None if to_stdout else _target_path(script, output, from_stdin, is_notebook)
    if target is not None and not (show_diff or check_only):
        _check_replaceable(target, force, is_notebook)  # before converting: fail fast

    if from_stdin:
        source, encoding = decode_source(_read_stdin(), name)
    else:
        source, encoding = read_script(script)
    if not source.strip():
        raise ScriptError("the script is empty", where=name, hint="pass the training script")
    check_size(source, name)  # before any parse: too long a script is refused at once
    notebook = None
    if is_notebook:
        from torch_scaffold.convert import notebook as nb

        notebook = nb.load(source, name)
        for cell, code in notebook.cells.items():
            _check_python3(code, name, where=lambda line, c=cell: f"{name}:cell {c + 1}:{line}")
        if not notebook.source.strip():
            raise ScriptError(
                "the notebook has no code cells",
                where=name,
                hint="pass the notebook with the training loop",
            )
        source = notebook.source
    else:
        _check_json(source, name)
        _check_python3(source, name)

    style = None
    if not from_stdin:
        from torch_scaffold.convert.style import find_style

        style = find_style(script)
    conversion = _convert(source, name, partial, style)
    code_to_stdout = to_stdout or show_diff
    say = _printer(err=code_to_stdout)
    target_name = str(target) if target else "<stdout>"
    locate = relabel = None
    if notebook is not None:  # the report names cells and their lines, not the joined source's
        from torch_scaffold.convert import notebook as nb

        def locate(line):
            return nb.locate(notebook, line)

        def relabel(text):
            return nb.relabel(notebook, text)

    if conversion.already_lightning:
        say(f"{name}: already uses PyTorch Lightning; nothing to convert, nothing written")
        return EXIT_OK
    if conversion.internal_errors:
        raise _internal_error(name, conversion.internal_errors[0].text)
    if conversion.code is None and not conversion.refused:
        raise _internal_error(name, "the converter returned neither code nor a reason")
    if conversion.code is not None:
        _check_compiles(conversion.code, name)
        if conversion.code == source and not conversion.refused:
            say(f"{name}: nothing to convert, nothing written")
            return EXIT_OK
    written = None  # what goes to the file or stdout: the script, or the notebook's JSON
    if conversion.code is not None:
        written = conversion.code
        if notebook is not None:
            written = _notebook_json(notebook, conversion.code, name)

    # Without --partial a refusal writes nothing, whatever the core returned.
    writable = conversion.code is not None and (partial or not conversion.refused)
    say(format_report(conversion, name, target_name if writable else None, locate, relabel))
    if not writable:
        _raise_if_refused(conversion, name, outcome="nothing written")
    if check_only:
        _raise_if_refused(conversion, name, outcome="nothing written (--check)")
        say(f"would write {target_name}; run without --check to convert")
        say(f"verify with: {again}")
        return EXIT_CHECK_FAILED
    if show_diff:
        before, after = source, conversion.code
        if notebook is not None:  # the cells' code, joined, with the IPython lines as written
            before, after = (
                nb.restore(before, notebook.magics)[0],
                nb.restore(after, notebook.magics)[0],
            )
        click.echo(unified_diff(before, after, name, target_name), nl=False)
        outcome = "shown as a diff, nothing written"
    elif to_stdout:
        click.echo(written, nl=False)
        outcome = "printed to stdout"
    else:
        replaced = target.exists()
        mode = file_mode(Path(script)) if not from_stdin else None
        if notebook is not None:
            code = written  # already stamped, in its metadata
        else:
            code = stamped(conversion.code, name, encoding)
        write_atomic(target, code, encoding=encoding, mode=mode)
        say(f"{'replaced' if replaced else 'wrote'} {target}")
        outcome = f"written to {target}"
    todos = sum(e.kind == TODO for e in conversion.entries)
    if todos and not conversion.refused:
        click.echo(
            f"warning: {todos} part(s) kept with {TODO_MARKER} markers; review them", err=True
        )
    _raise_if_refused(conversion, name, outcome=outcome, partial_result=True)
    if again is not None:
        say(f"verify with: {again}")
    if verify:
        _verify(
            source,
            conversion.code,
            Path(script),
            target,
            name,
            steps=steps,
            timeout=timeout,
            python=python,
            script_args=script_args,
            notebook=notebook is not None,
            say=say,
            encoding="utf-8" if notebook is not None else encoding,
        )
    return EXIT_OK


def _verify(
    source,
    code,
    script: Path,
    target,
    name,
    *,
    steps,
    timeout,
    python,
    script_args,
    notebook,
    say,
    encoding,
) -> None:
    """Train both versions for `steps` losses (None: whole runs); say how far they and the
    weights agree, or raise exit 4 / 6."""
    from torch_scaffold.convert.verify import MISMATCH, OK, Interrupted, verify

    if notebook:  # both run as the Python of their code cells, IPython lines left out
        run_name = f"{script.stem}_lightning.py"
        original_name = f"{script.stem}.py"
    else:
        run_name = target.name if target is not None else f"{script.stem}_lightning.py"
        original_name = script.name
    how_long = "to the end of its run" if steps is None else f"for {steps} losses"
    say(f"verify: running the original and the converted script, each {how_long} ...")
    kept = f"; {target} is kept" if target is not None else ""
    try:
        verdict = verify(
            source,
            code,
            script.with_name(original_name),
            run_name,
            steps=steps,
            timeout=timeout,
            python=python,
            args=tuple(script_args),
            protect=tuple(p.parent for p in (target,) if p is not None),
            encoding=encoding,
        )
    except Interrupted as stop:
        raise VerifyStopped(
            f"--verify: stopped by {stop.signal_name}; the runs were ended and their scratch "
            f"folders removed{kept}",
            where=name,
            exit_code=stop.exit_code,
        ) from None
    if verdict.status == OK:
        timing = f"{verdict.original.seconds:.1f} s and {verdict.converted.seconds:.1f} s"
        say(f"verify: {verdict.message} (original and converted, seed 0; {timing})")
        say(f"verify: {verdict.weights}")
        return
    kept = f"{kept} for review" if kept else ""
    error = VerifyMismatch if verdict.status == MISMATCH else VerifyIncomplete
    raise error(f"--verify: {verdict.message}{kept}", where=name, hint=verdict.hint)


def verify_command(script, output, to_stdout, script_args, steps, timeout, python) -> str:
    """The shell command that converts SCRIPT as this run does (its -o, --stdout) and then
    verifies the result: what the report ends with. --steps, --timeout, --python and the
    script's arguments only as they were given."""
    words = ["scaffold", "convert", script]
    if output is not None:
        words += ["-o", output]
    if to_stdout:
        words.append("--stdout")
    words.append("--verify")
    if str(steps) != "20":
        words += ["--steps", str(steps)]
    if timeout != 600:
        words += ["--timeout", f"{timeout:g}"]
    if python:
        words += ["--python", python]
    if script_args:
        words += ["--", *script_args]
    return shlex.join(words)


def _notebook_json(notebook, code: str, name: str) -> str:
    from torch_scaffold.convert import notebook as nb

    try:
        data = nb.split(notebook, code)
    except ValueError as err:
        raise _internal_error(name, str(err)) from None
    dropped = nb.restore(code, notebook.magics)[1]
    if dropped:  # in code the conversion removed: say so, the report lists only Python
        shown = ", ".join(f"`{notebook.magics[n].strip()}`" for n in dropped)
        click.echo(
            f"warning: IPython line(s) dropped with the code they were in: {shown}", err=True
        )
    return nb.dumps(data, Path(name).name)


def format_report(conversion, name: str, target_name: str | None, locate=None, relabel=None) -> str:
    """The report: a heading, one `file:line: kind: text` row per decision (`kind: text` when
    the core gave no line), then the counts."""
    head = f"{name} -> {target_name}" if target_name else f"{name}: conversion refused"
    rank = {kind: i for i, kind in enumerate(REPORT_ORDER)}
    entries = sorted(
        conversion.entries,
        key=lambda e: (rank.get(e.kind, len(rank)), e.line if e.line is not None else 0),
    )
    rows = [
        (
            f"  {_location(name, e.line, e.end_line, locate)}: {e.render()}"
            if e.line
            else f"  {e.render()}"
        )
        for e in entries
    ]
    if relabel is not None:
        rows = [relabel(row) for row in rows]
    counts = {kind: sum(e.kind == kind for e in conversion.entries) for kind in REPORT_ORDER}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no changes"
    return "\n".join([head, *rows, f"summary: {summary}"])


def unified_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    lines = difflib.unified_diff(
        _lines(before), _lines(after), fromfile=before_name, tofile=after_name
    )
    return "".join(lines)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def _location(name: str, line: int | None, end_line: int | None, locate=None) -> str:
    if line is None:
        return name
    if locate is not None:  # a notebook: `cell N:L`, or `cell N:L-M` within one cell
        start, end = locate(line), locate(end_line) if end_line not in (None, line) else None
        if start is None:
            return name
        if end is not None and end.split(":")[0] == start.split(":")[0]:
            return f"{name}:{start}-{end.split(':')[1]}"
        return f"{name}:{start}-{end}" if end else f"{name}:{start}"
    if end_line is not None and end_line != line:
        return f"{name}:{line}-{end_line}"
    return f"{name}:{line}"


def _printer(err: bool):
    def say(text: str) -> None:
        click.echo(text, err=err)

    return say


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None:
        raise ScriptError("stdin is closed", where=STDIN_NAME, hint="pass a file instead of -")
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        return read_limited(stream, STDIN_NAME).encode("utf-8")
    return read_limited(buffer, STDIN_NAME)


def _check_verify_options(verify, check_only, from_stdin, script_args, steps, timeout):
    """The number of losses to compare (None: `--steps all`, whole runs); usage errors: exit 2."""
    if not verify:
        if script_args:
            raise ScaffoldError(
                f"unexpected argument {script_args[0]!r}: scaffold convert takes one script",
                hint="convert one script per run (--check takes several); arguments after -- are"
                " for --verify's runs (scaffold convert SCRIPT --verify -- ARGS)",
            )
        return None
    if check_only:
        raise ScaffoldError(
            "--verify and --check cannot be combined", hint="--verify needs the converted script"
        )
    if from_stdin:
        raise ScaffoldError(
            "--verify needs a script file, not stdin",
            hint="the runs read the script's data relative to its folder; pass the file",
        )
    if str(steps).strip().lower() == "all":
        steps = None
    else:
        try:
            steps = int(steps)
        except ValueError:
            raise ScaffoldError(
                f"--steps must be a number of losses or 'all', not {steps!r}",
                hint="e.g. --steps 20, or --steps all to compare whole runs",
            ) from None
        if steps < 1:
            raise ScaffoldError(f"--steps must be at least 1, not {steps}", hint="e.g. --steps 20")
    if not timeout > 0:
        raise ScaffoldError(
            f"--timeout must be positive, not {timeout:g}", hint="e.g. --timeout 600"
        )
    return steps


def _check_json(source: str, name: str) -> None:
    """JSON (not a notebook by name, or a notebook saved without .ipynb) is not Python: exit 2."""
    from torch_scaffold.convert import notebook as nb

    if not nb.looks_like_json(source):
        return
    import json

    try:
        data = json.loads(source)
    except (ValueError, RecursionError):  # too deep: _check_python3 says so, for any input
        return  # Python that starts with a brace or a bracket
    if isinstance(data, dict) and "cells" in data:
        raise ScriptError(
            "is a Jupyter notebook without the .ipynb suffix",
            where=name,
            hint="rename it to .ipynb, and scaffold convert converts its code cells",
        )
    if isinstance(data, (dict, list)):
        raise ScriptError(
            "is JSON, not a Python script or a Jupyter notebook",
            where=name,
            hint="pass the .py training script, or an .ipynb notebook",
        )


def _check_options(output, show_diff, check_only, to_stdout) -> None:
    modes = [
        flag
        for flag, on in (("--diff", show_diff), ("--check", check_only), ("--stdout", to_stdout))
        if on
    ]
    if len(modes) > 1:
        raise ScaffoldError(
            f"{' and '.join(modes)} cannot be combined",
            hint="pick one of --diff, --check, --stdout",
        )
    if to_stdout and output not in (None, STDIN):
        raise ScaffoldError(
            "-o and --stdout cannot be combined", hint="use -o FILE to write, or --stdout to print"
        )


def _target_path(script: str, output: str | None, from_stdin: bool, notebook: bool = False) -> Path:
    suffix = ".ipynb" if notebook else ".py"
    if output is None:
        source = Path(script)
        target = source.with_name(f"{source.stem}_lightning{suffix}")
    else:
        target = Path(output)
    where = str(target)
    if notebook and target.suffix.lower() != ".ipynb":
        raise OutputError(
            "a notebook converts to a notebook; the output must end in .ipynb",
            where=where,
            hint=f"use -o {target.with_suffix('.ipynb').name}, or leave -o out",
        )
    if target.is_dir():
        raise OutputError("is a directory", where=where, hint="give -o a file name, e.g. -o out.py")
    if not target.parent.is_dir():
        raise OutputError(
            "the output's folder does not exist", where=where, hint="create the folder first"
        )
    if not from_stdin and target.exists() and _same_file(target, Path(script)):
        raise OutputError(
            "is the input script; scaffold convert never modifies its input",
            where=where,
            hint="pick another -o, or leave it out to write <stem>_lightning.py",
        )
    return target


def _check_replaceable(target: Path, force: bool, notebook: bool = False) -> None:
    """Only regular files are replaced, and without --force only unedited earlier results."""
    where = str(target)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as err:
        raise OutputError(f"cannot check the output: {err.strerror or err}", where=where) from None
    if not stat.S_ISREG(info.st_mode):  # a link (to /dev/stdout, say), a FIFO, a device
        raise OutputError(
            f"is {kind_of(info.st_mode)}; scaffold convert replaces only regular files",
            where=where,
            hint="pass --stdout to print the result, or give -o the path of a regular file",
        )
    if force:
        return
    try:
        state = _notebook_provenance(target) if notebook else provenance(target, MAX_SCRIPT_BYTES)
    except (FileTooLarge, NotRegularFile):  # too big to be ours, or swapped since lstat
        state = FOREIGN
    except OSError as err:
        raise OutputError(f"cannot read the output: {err.strerror or err}", where=where) from None
    if state == EDITED:
        raise OutputError(
            "was edited since scaffold convert wrote it; refusing to overwrite the edits",
            where=where,
            hint="pass --force to replace it anyway, or give -o another file",
        )
    if state == FOREIGN:
        raise OutputError(
            "exists and was not written by scaffold convert; refusing to overwrite it",
            where=where,
            hint="pass --force to replace it anyway, or give -o another file",
        )


def _notebook_provenance(target: Path) -> str:
    from torch_scaffold.convert import notebook as nb
    from torch_scaffold.regular_file import read_regular

    data = read_regular(target, MAX_SCRIPT_BYTES)
    return nb.provenance_of(data.decode("utf-8", errors="replace"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _check_python3(source: str, name: str, where=None) -> None:
    """Fail fast with file:line for code that is not Python 3, and say so for Python 2.
    where(line) names the place (a notebook: `nb.ipynb:cell 3:2`)."""
    where = where or (lambda line: f"{name}:{line}")
    try:
        ast.parse(source, filename=name)
    except SyntaxError as err:
        line = err.lineno or 1
        text = source.splitlines()[line - 1] if 0 < line <= len(source.splitlines()) else ""
        if _PY2_LINE.search(text) or any(m in str(err.msg) for m in _PY2_MESSAGES):
            raise ScriptError(
                "Python 2 is not supported",
                where=where(line),
                hint="port the script to Python 3 first (e.g. print(...), except E as e:)",
            ) from None
        raise ScriptError(
            f"syntax error: {err.msg}",
            where=where(line),
            hint="the script must run under Python 3; fix the line and convert again",
        ) from None
    except (RecursionError, MemoryError):
        raise ScriptError(
            "too deeply nested to parse", where=name, hint="simplify the nesting"
        ) from None


def _convert(source: str, name: str, partial: bool, style=None):
    from torch_scaffold.convert import convert_source

    try:
        # the style only when the project has one: black's defaults are the core's own
        extra = {"style": style} if style is not None and style.source else {}
        return convert_source(source, name, partial=partial, **extra)
    except ScaffoldError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a converter bug is never a traceback
        raise _internal_error(name, f"{type(exc).__name__}: {exc}") from None


class VerifyStopped(ScaffoldError):
    """SIGTERM or SIGINT during --verify: one line, exit 128 + the signal's number."""

    def __init__(self, message: str, *, where: str, exit_code: int):
        super().__init__(message, where=where)
        self.exit_code = exit_code


class ConverterBug(ScaffoldError):
    """The converter failed: a bug in scaffold, not a refusal of the script."""

    exit_code = EXIT_INTERNAL


def _internal_error(name: str, what: str) -> ConverterBug:
    return ConverterBug(
        f"internal converter error (a bug, not a refusal): {what}",
        where=name,
        hint="this is a bug in scaffold, not in your script; nothing was written. "
        "Please report it with the script attached (scaffold convert exits 5 on such bugs)",
    )


def _check_compiles(code: str, name: str) -> None:
    try:
        compile(code, f"{name} (converted)", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as err:
        where = f" at line {err.lineno}" if getattr(err, "lineno", None) else ""
        raise _internal_error(name, f"the converted code does not compile{where}: {err}") from None


def _raise_if_refused(conversion, name: str, outcome: str, partial_result: bool = False) -> None:
    """Exit 3 (via ConversionRefused) naming the first refusal; the report listed them all."""
    refusals = sorted(conversion.refusals, key=lambda e: e.line if e.line is not None else 0)
    if not refusals:
        return
    first = refusals[0]
    more = f" (and {len(refusals) - 1} more, listed above)" if len(refusals) > 1 else ""
    if partial_result:
        markers = conversion.code.count(TODO_MARKER)
        done = f"partial result with {markers} {TODO_MARKER} marker(s) {outcome}"
        hint = f"finish the parts marked {TODO_MARKER} by hand"
    else:
        done = outcome
        hint = "rewrite those parts by hand, or pass --partial to get a file with TODO markers"
    raise ConversionRefused(
        f"conversion refused: {first.text}{more}; {done}",
        where=_location(name, first.line, None),
        hint=hint,
    )
