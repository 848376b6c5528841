"""Command line: parse options, call the core, map errors to exit codes.

Only click and the standard library are imported at module level, so that
`scaffold --help` and `scaffold --version` stay fast; every command imports
what it needs (jinja2, black, libcst, yaml) inside its body.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from torch_scaffold import __version__
from torch_scaffold.errors import ScaffoldError

STYLES = ("pytorch", "lightning")


class _NamesItself:
    """Some of click's parse errors (an option missing its value) come without a context;
    give them the command's, so that the hint names the right --help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            err.ctx = err.ctx or ctx
            raise


class _Command(_NamesItself, click.Command):
    pass


class _Group(_NamesItself, click.Group):
    """Turns ScaffoldError and click's usage errors into one clear message and its exit code,
    never a traceback and never click's own `Usage: ... Error: ...` block."""

    command_class = _Command
    group_class = type  # subgroups (`scaffold spec`) are _Group too

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:  # the top level's own options: `scaffold --bogus`
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            _usage_error(err)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScaffoldError as err:
            click.echo(err.render(), err=True)
            sys.exit(err.exit_code)
        except click.UsageError as err:  # a subcommand's options, parsed in here
            _usage_error(err)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)


def _usage_error(err: click.UsageError) -> NoReturn:
    """`error: <click's message, on one line>` and a hint naming the command's --help."""
    if isinstance(err, click.exceptions.NoArgsIsHelpError):
        raise err  # `scaffold spec` alone: click shows the help, as --help would
    names = []
    ctx = err.ctx
    while ctx is not None and ctx.parent is not None:  # the root's name may be `python -m ...`
        names.append(ctx.info_name)
        ctx = ctx.parent
    command = " ".join(["scaffold", *reversed(names)])
    message = " ".join(err.format_message().split())
    click.echo(f"error: {message}\nhint: run '{command} --help'", err=True)
    sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scaffold")
def main() -> None:
    """Generate PyTorch / Lightning training projects, and convert training scripts to Lightning.

    \b
    Exit codes: 0 done; 1 --check found work to do, or update left conflicts; 2 bad input or
    usage; 3 conversion refused; 4 convert --verify found a loss or weight that differs; 5 an
    internal converter error; 6 convert --verify could not compare (the original failed, or a
    timeout); 130/143 interrupted (Ctrl-C / SIGTERM).
    """


@main.command()
@click.argument("spec_file", required=False, metavar="[SPEC.yaml]")
@click.option(
    "--style",
    type=click.Choice(STYLES),
    default=None,
    help="Plain PyTorch loop or PyTorch Lightning (required, unless -i asks for it).",
)
@click.option(
    "-i",
    "--interactive",
    is_flag=True,
    help="Ask for the name, task, model, data and style; write the spec beside the project.",
)
@click.option(
    "-o", "--output", "output", default=None, help="Target folder (default: ./<project-slug>)."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec field by dotted path, e.g. optimizer.lr=3e-4. Repeatable.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into an existing non-empty folder: generated files are replaced, all other "
    "files are kept (docs/output.md).",
)
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="With --force in a git work tree: replace files even if they have uncommitted changes.",
)
@click.option(
    "--git",
    "git",
    is_flag=True,
    help="Commit the new project to git: a new repository, or the one the folder is in.",
)
def new(
    spec_file: str | None,
    style: str,
    output: str | None,
    overrides: tuple[str, ...],
    force: bool,
    allow_dirty: bool,
    git: bool,
    interactive: bool,
) -> None:
    """Render a complete training project from SPEC.yaml (default: the embedded MLP example)."""
    from torch_scaffold.commands.new import run_new, spec_from_answers

    if interactive:
        if spec_file is not None:
            raise click.UsageError("give either SPEC.yaml or -i, not both")
        spec_file, style = spec_from_answers(style, output)
    elif style is None:
        raise click.UsageError("Missing option '--style'. Choose from: pytorch, lightning")
    run_new(
        spec_file,
        style=style,
        output=output,
        overrides=list(overrides),
        force=force,
        allow_dirty=allow_dirty,
        git=git,
    )


@main.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a spec field (dotted path), on top of the recorded spec and its overrides.",
)
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(),
    help="Replace the recorded spec (earlier --set overrides still apply).",
)
@click.option(
    "--reset-overrides", is_flag=True, help="Drop the earlier --set overrides before --set."
)
@click.option("--dry-run", is_flag=True, help="List what would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Show the changes as diffs; write nothing.")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="In a git work tree: update files even if they have uncommitted changes.",
)
@click.option(
    "--abort",
    is_flag=True,
    help="Undo the last update that left conflicts (your edits since then to its files are lost).",
)
def update(
    folder: str | None,
    overrides: tuple[str, ...],
    spec_file: str | None,
    dry_run: bool,
    show_diff: bool,
    allow_dirty: bool,
    abort: bool,
    reset_overrides: bool,
) -> None:
    """Re-render FOLDER (default: .) with this scaffold and its spec, merging into your edits.

    Exit 0: merged (or up to date); 1: conflicts, marked in the files (or still unresolved from
    the last update); 2: bad input.
    """
    from torch_scaffold.commands.update import run_update

    code = run_update(
        folder,
        overrides=list(overrides),
        spec_file=spec_file,
        dry_run=dry_run,
        show_diff=show_diff,
        allow_dirty=allow_dirty,
        abort=abort,
        reset_overrides=reset_overrides,
    )
    raise SystemExit(code)


@main.group()
def spec() -> None:
    """Inspect and validate model specifications."""


@spec.command("example")
def spec_example() -> None:
    """Print the default spec, with a comment explaining each field."""
    from torch_scaffold.spec import example_yaml

    click.echo(example_yaml(), nl=False)


@spec.command("check")
@click.argument("spec_files", nargs=-1, required=True, metavar="SPEC.yaml...")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Apply overrides (to every file) before checking.",
)
def spec_check(spec_files: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate each SPEC.yaml: every problem with its line and field; exit 2 if any."""
    from torch_scaffold.errors import SpecError
    from torch_scaffold.spec import load_spec
    from torch_scaffold.spec.overrides import parse_override

    for override in overrides:  # a bad --set is reported once, not once per file
        parse_override(override)
    code = 0
    for spec_file in spec_files:
        try:
            loaded = load_spec(spec_file, list(overrides))
        except SpecError as err:
            click.echo(err.render(), err=True)
            code = max(code, err.exit_code)
            continue
        click.echo(
            f"{spec_file}: ok ({loaded.task}, model {loaded.model.type}, data {loaded.data.source})"
        )
    if code:
        sys.exit(code)


@spec.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and CI checks)."""
    import json

    from torch_scaffold.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command()
@click.argument("script", metavar="SCRIPT")
@click.argument("script_args", nargs=-1, metavar="[-- ARGS...]")
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    help="Output file (default: <stem>_lightning.py beside SCRIPT).",
)
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Print a unified diff against the input instead of writing.",
)
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Report what would be converted; exit 1 if there is work to do.",
)
@click.option(
    "--stdout", "to_stdout", is_flag=True, help="Print the converted script instead of writing it."
)
@click.option(
    "--partial",
    is_flag=True,
    help="On refusal, still write the file with # TODO(scaffold) markers.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing output even if scaffold did not write it or it was edited since.",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Then train the original and the converted script for --steps losses each (same seed, "
    "same device, in a scratch folder) and compare the losses and the model's weights: exit 4 "
    "when one differs.",
)
@click.option(
    "--steps",
    default="20",
    show_default=True,
    metavar="N|all",
    help="--verify: how many back-propagated losses to compare; `all`: whole runs.",
)
@click.option(
    "--timeout",
    type=float,
    default=600,
    show_default=True,
    metavar="SECONDS",
    help="--verify: stop a run that takes longer (exit 6).",
)
@click.option(
    "--python",
    default=None,
    metavar="PATH",
    help="--verify: the interpreter that runs the scripts (needs torch; default: scaffold's own).",
)
def convert(
    script: str,
    output: str | None,
    show_diff: bool,
    check_only: bool,
    to_stdout: bool,
    partial: bool,
    force: bool,
    script_args: tuple[str, ...],
    verify: bool,
    steps: str,
    timeout: float,
    python: str | None,
) -> None:
    """Rewrite a manual PyTorch training script (SCRIPT, or - for stdin) as a LightningModule + Trainer.

    Writes <stem>_lightning.py beside SCRIPT (stdin: prints to stdout) and never modifies SCRIPT.
    A notebook (.ipynb) becomes <stem>_lightning.ipynb: its code cells are converted, markdown
    and outputs are kept. Prints a report of what moved where, with line numbers (on stderr when
    the code goes to stdout).

    With --verify it then runs `python SCRIPT ARGS` and the converted script from the current
    folder, each for --steps losses (`--steps all`: to the end), and reports "first N losses
    identical" and how the model's weights compare there, or the first loss or weight tensor
    that differs. The report ends with this --verify command. The runs work in a scratch folder that mirrors your files: they read your
    data, and what they write is deleted with it. Arguments after -- go to both runs.

    \b
    Exit codes:
      0  converted, or nothing to do (the script already uses Lightning)
      1  --check found work to do
      2  bad input: missing/binary/non-UTF-8 file, syntax error, Python 2, a script over
         100,000 lines or 4 MiB (too large to convert), bad options or -o,
         an existing output scaffold did not write or that was edited since (see --force)
      3  refused: reasons printed with line numbers, nothing written. With --partial the file
         is written with # TODO(scaffold) markers and the exit code is still 3, so CI never
         takes an incomplete conversion for a finished one.
      4  --verify: a loss or a weight tensor differs (or the converted script fails where
         the original runs); the output stays written, for review
      5  an internal converter error: nothing written; please report it with the script.
      6  --verify could not compare: the original failed or ended without a loss, or a run
         took longer than --timeout
      130, 143  --verify stopped by Ctrl-C or SIGTERM: runs ended, scratch folders removed
    """
    from torch_scaffold.commands.convert import run_convert

    if check_only and not verify and script_args:
        # pre-commit hands a hook every matching file at once: --check takes them all
        sys.exit(_check_scripts([script, *script_args], output, show_diff, to_stdout))
    code = run_convert(
        script,
        output=output,
        show_diff=show_diff,
        check_only=check_only,
        to_stdout=to_stdout,
        partial=partial,
        force=force,
        verify=verify,
        steps=steps,
        timeout=timeout,
        python=python,
        script_args=script_args,
    )
    sys.exit(code)


def _check_scripts(scripts: list[str], output, show_diff: bool, to_stdout: bool) -> int:
    """convert --check on each script in turn; the exit code is the worst one (2 for bad
    input outranks 1, work to do), so one bad file never hides another's report."""
    from torch_scaffold.commands.convert import run_convert

    if output is not None or show_diff or to_stdout:
        raise ScaffoldError(
            "-o, --diff and --stdout take one script",
            hint="check several scripts with --check alone, or convert them one at a time",
        )
    codes = []
    for script in scripts:
        try:
            codes.append(run_convert(script, check_only=True))
        except ScaffoldError as err:
            click.echo(err.render(), err=True)
            codes.append(err.exit_code)
    return max(codes)


if __name__ == "__main__":
    main()
