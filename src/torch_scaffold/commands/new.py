"""`scaffold new`: spec -> rendered project -> written folder, then say what to do next."""

from __future__ import annotations

import os
from pathlib import Path

import click

from torch_scaffold.commands._words import counted
from torch_scaffold.errors import OutputError


def _load(spec_file: str | None, overrides: list[str]):
    from torch_scaffold.spec import example_yaml, load_spec, load_spec_text

    if spec_file is None:
        return load_spec_text(example_yaml(), "<default spec>", overrides)
    return load_spec(spec_file, overrides)


def _inputs(spec_file: str | None, spec) -> dict[str, str]:
    """The files this run reads (as the user named them); none may be replaced by the output."""
    inputs = {}
    if spec_file is not None:
        inputs["the spec being read"] = spec_file
    if spec.model.type == "custom":
        inputs["the model source being read"] = spec.model.source.rpartition(":")[0]
    return inputs


def _refuse_uncommitted(target: Path, files: dict[str, str]) -> None:
    """--force in a git work tree: refuse to replace files with uncommitted changes."""
    from torch_scaffold.commands._git import GitError, uncommitted

    present = [rel for rel in files if os.path.lexists(target / rel)]
    try:
        dirty = uncommitted(target, present) if target.is_dir() else []
    except GitError as err:
        click.echo(f"warning: could not ask git for uncommitted changes ({err})", err=True)
        return
    if dirty:
        raise OutputError(
            f"--force would replace {counted(len(dirty), 'file')} with uncommitted changes:"
            f" {', '.join(dirty)}",
            where=str(target),
            hint="commit or stash them first (git stash -u), or pass --allow-dirty to replace"
            " them anyway",
        )


def spec_from_answers(style: str | None, output: str | None) -> tuple[str, str]:
    """-i: ask, write the answers as <project folder>.spec.yaml beside it; (spec path, style)."""
    from torch_scaffold.commands.interactive import ask_spec, to_yaml
    from torch_scaffold.spec import load_spec_text, project_names

    answers, style = ask_spec(style)
    slug, _ = project_names(load_spec_text(to_yaml(answers), "<your answers>"))
    folder = Path(output) if output else Path(slug)
    spec_path = folder.parent / f"{folder.name}.spec.yaml"
    data = answers.get("data", {})
    for key in ("path", "targets_path"):  # typed from here; absolute, so they hold anywhere
        if data.get(key):
            data[key] = os.path.abspath(data[key])
    text = to_yaml(answers)
    try:
        with open(spec_path, "x", encoding="utf-8") as stream:  # never replaces a file
            stream.write(f"# Written by scaffold new -i; edit it and run scaffold update.\n{text}")
    except FileExistsError:
        raise OutputError(
            "exists already; not replaced",
            where=str(spec_path),
            hint="move it away, or pass it as the spec: scaffold new SPEC.yaml",
        ) from None
    click.echo(f"Wrote the spec to {spec_path}")
    return str(spec_path), style


def _provenance(
    spec_file: str | None, overrides: list[str], style: str, files: dict[str, str]
) -> dict[str, str]:
    """.scaffold/: the spec as given, the style and version, and the render (update's base)."""
    from torch_scaffold.generate.provenance import Provenance, provenance_files
    from torch_scaffold.spec import example_yaml
    from torch_scaffold.spec.overrides import merge_overrides
    from torch_scaffold.spec.source import read_spec_file

    overrides = merge_overrides([], overrides)  # a set keyed by field, as update keeps it
    if spec_file is None:
        text, source = example_yaml(), "<default spec>"
    else:
        text, source = read_spec_file(spec_file), os.path.abspath(spec_file)
    return provenance_files(Provenance(style, text, source, overrides, base=dict(files)))


def _edited_since_generated(target: Path, files: dict[str, str]) -> list[str]:
    """In a scaffold project: the generated files whose text differs from the recorded render."""
    from torch_scaffold.generate.provenance import is_scaffold_project, read_provenance

    if not is_scaffold_project(target):
        return []
    base = read_provenance(target).base
    return sorted(
        rel
        for rel in files
        if rel in base
        and (target / rel).is_file()
        and (target / rel).read_text(encoding="utf-8", errors="replace") != base[rel]
    )


def _tree(paths: list[str]) -> list[str]:
    """Indented listing, folders first, in the order a file browser shows them."""
    lines: list[str] = []
    shown: set[str] = set()
    for path in sorted(paths, key=lambda p: (p.split("/")[:-1], p)):
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[: depth + 1])
            if folder not in shown:
                shown.add(folder)
                lines.append(f"{'  ' * depth}{parts[depth]}/")
        lines.append(f"{'  ' * (len(parts) - 1)}{parts[-1]}")
    return lines


def run_new(
    spec_file: str | None,
    *,
    style: str,
    output: str | None = None,
    overrides: list[str] | None = None,
    force: bool = False,
    allow_dirty: bool = False,
    git: bool = False,
) -> Path:
    from torch_scaffold.generate import build_context, render_project, write_project
    from torch_scaffold.generate.formatting import FormattingError
    from torch_scaffold.generate.write import check_folder, resolve_target

    if git:
        from torch_scaffold.commands._git import have_git

        if not have_git():
            raise OutputError("--git: git is not installed", hint="install git, or leave out --git")
    spec = _load(spec_file, list(overrides or []))
    context = build_context(spec, style)
    target = resolve_target(Path(output) if output else Path(context["project_slug"]))
    check_folder(target)  # before rendering, the slow part
    try:
        files = render_project(spec, style)
    except FormattingError as err:
        raise OutputError(
            f"generated code could not be formatted: {err}",
            where=err.path,
            hint="this is a bug in the templates; please report it with your spec",
        ) from err
    files.update(_provenance(spec_file, list(overrides or []), style, files))
    if force and not allow_dirty:
        _refuse_uncommitted(target, files)
    edited = _edited_since_generated(target, files) if force else []
    result = write_project(files, target, force=force, inputs=_inputs(spec_file, spec))

    if edited:  # --force was the explicit choice; say what it cost
        click.echo(
            f"warning: --force replaced {counted(len(edited), 'generated file')} you had edited:"
            f" {', '.join(edited)} (`scaffold update` would have merged them)",
            err=True,
        )
    for note in result.recovered:
        click.echo(f"note: {note}", err=True)
    click.echo(f"Wrote {counted(len(result.written), 'file')} ({style} style) to {result.target}:")
    for line in _tree(result.written):
        click.echo(f"  {line}")
    if result.replaced:
        click.echo(f"Replaced {counted(len(result.replaced), 'existing file')} (--force):")
        for rel in result.replaced:
            click.echo(f"  {rel}")
    if result.kept:
        click.echo(
            f"Kept {counted(len(result.kept), 'file')} scaffold did not generate:"
            f" {', '.join(result.kept)}"
        )
    if git:
        from torch_scaffold.commands._git import GitError, first_commit

        try:
            click.echo(first_commit(result.target, f"New {style} project from scaffold"))
        except GitError as err:
            raise OutputError(
                f"the project was written, but git could not commit it: {err}",
                where=str(result.target),
                hint="commit it yourself (git add -A && git commit)",
            ) from None
    click.echo("\nNext:")
    click.echo(f"  cd {result.target}")
    click.echo('  pip install -e ".[dev]"    # optional: runs from this folder without installing')
    click.echo(f"  python -m {context['package_name']} fit --max-epochs 2")
    click.echo("  python -m pytest -q")
    return result.target
