"""cookiecutter hook: finish the project the way `scaffold new` does.

Runs inside the generated project. Files whose template rendered empty are
switched off by the spec and removed; Python files are formatted with black
(line length 100, as in the project's pyproject.toml) when black is installed.
When torch-scaffold is installed, `.scaffold/` records what made the project, as
`scaffold new` writes it, so `scaffold update` can update it (`cruft update` is the
other way, with cruft's `.cruft.json`).
"""

import json
import pathlib
import sys

project = pathlib.Path.cwd()
for path in sorted(project.rglob("*")):
    if path.is_file() and not path.read_text(encoding="utf-8").strip():
        path.unlink()

try:
    import black
except ImportError:
    black = None

if black is not None:
    mode = black.Mode(line_length=100)
    for path in sorted(project.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        path.write_text(black.format_str(source, mode=mode), encoding="utf-8")


def record_provenance(spec, style, slug, package):
    """Write .scaffold/ for `scaffold update`; a note says why when it cannot."""
    try:
        import yaml

        from torch_scaffold.generate.provenance import (
            FOLDER,
            Provenance,
            provenance_files,
        )
        from torch_scaffold.spec import load_spec_text, project_names
    except ImportError:
        return "torch-scaffold is not installed (update this project with cruft update)"
    spec = {**spec, "name": slug}  # the name typed is the project's name from now on
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    derived = project_names(load_spec_text(text, "the cookiecutter `spec` variable"))
    if derived != (slug, package):
        return (
            f"package_name {package!r} is not the one scaffold derives from {slug!r}"
            f" ({derived[1]!r}); update this project with cruft update"
        )
    base = {
        path.relative_to(project).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(project.rglob("*"))
        if path.is_file() and FOLDER not in path.relative_to(project).parts
    }
    record = Provenance(style, text, "<cookiecutter>", [], base=base)
    for rel, content in provenance_files(record).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(content, encoding="utf-8")
    return None


why_not = record_provenance(
    json.loads({{ cookiecutter.spec | pyrepr }}),
    {{ cookiecutter._project.style | pyrepr }},
    {{ cookiecutter.project_slug | pyrepr }},
    {{ cookiecutter.package_name | pyrepr }},
)
if why_not:
    print(f"note: no .scaffold/ for scaffold update: {why_not}", file=sys.stderr)
