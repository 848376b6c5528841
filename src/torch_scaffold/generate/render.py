"""Render a style's cookiecutter template into {relative posix path: text} (pure, no writes).

We walk `templates/<style>/{{cookiecutter.project_slug}}/` ourselves instead of
calling cookiecutter (faster, and nothing touches the disk), with the same
Jinja settings cookiecutter uses for these templates: the loader path
['.', '../templates'] (the `templates` link in each style reaches the shared
partials), trim/lstrip blocks, StrictUndefined and the template's own filters.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from torch_scaffold.generate import cache
from torch_scaffold.generate.context import cookiecutter_context
from torch_scaffold.spec.schema import Spec

PROJECT_DIR_NAME = "{{cookiecutter.project_slug}}"


def templates_root() -> Path:
    """templates/ in a source checkout, torch_scaffold/templates in an installed wheel."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "templates"


@functools.cache
def _filters_extension(path: str):
    spec = importlib.util.spec_from_file_location("_scaffold_template_filters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ScaffoldFilters


@functools.cache
def _environment(style_dir: str, bytecode_dir: str | None):
    import jinja2

    root = Path(style_dir)
    extension = _filters_extension(str(root / "local_extensions.py"))
    # Compiled templates are kept on disk (keyed by each template's source): compiling them
    # is most of rendering. Jinja ignores an entry that is stale or unreadable.
    bytecode = None if bytecode_dir is None else jinja2.FileSystemBytecodeCache(bytecode_dir)
    return jinja2.Environment(
        bytecode_cache=bytecode,
        # `templates` is a symlink to ../_shared in a checkout (cookiecutter's own search
        # path); wheels do not keep directory symlinks, so _shared is searched directly too.
        loader=jinja2.FileSystemLoader(
            [str(root / PROJECT_DIR_NAME), str(root / "templates"), str(root.parent / "_shared")]
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        extensions=[extension],
    )


def _template_files(project_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(project_dir).as_posix()
        for p in project_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def render_templates(context: dict[str, Any], style: str) -> dict[str, str]:
    """Raw rendered text per output path; files that render empty are switched off (omitted)."""
    style_dir = templates_root() / style
    bytecode_dir = cache.subfolder("jinja")
    env = _environment(str(style_dir), None if bytecode_dir is None else str(bytecode_dir))
    variables = {"cookiecutter": context}
    files: dict[str, str] = {}
    for name in _template_files(style_dir / PROJECT_DIR_NAME):
        out_path = env.from_string(name).render(variables) if "{" in name else name
        text = env.get_template(name).render(variables)
        if text.strip():
            files[out_path] = text
    return files


# Modules that are the same in every project, copied as written: templates/_shared keeps them
# black-formatted (tests check), and black takes about half a millisecond per line.
PREFORMATTED = (
    "config_checks.py",
    "checkpoint_files.py",
    "checkpoint_folders.py",
    "runs.py",
    "optim.py",
    "arrays.py",
)


def render_project(spec: Spec, style: str, *, format_code: bool = True) -> dict[str, str]:
    """spec -> {relative posix path: file text}; every .py file black-formatted."""
    files = render_templates(cookiecutter_context(spec, style), style)
    if format_code:
        from torch_scaffold.generate.formatting import format_files

        formatted = format_files(
            {path: text for path, text in files.items() if Path(path).name not in PREFORMATTED}
        )
        files = {path: formatted.get(path, text) for path, text in files.items()}
    return files
