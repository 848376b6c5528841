"""Write dependency_names.py: what a generated project depends on, directly or not.

    python -m torch_scaffold.spec.dependency_scan > src/torch_scaffold/spec/dependency_names.py

Run it in an environment where the generated projects' requirements are installed (the
development environment: torch, pytorch-lightning, tensorboard, ...). It walks their
requirements recursively (every platform's, not the optional extras of a dependency) and lists
each distribution's name and the top-level modules it installs. A requirement that is not
installed contributes its own name only (module: the name with '-' as '_'), and is named in
the file's header. A project name that is one of these would shadow the dependency's module
or replace its distribution (`pip install -e .`), so the spec rules refuse it.
"""

from __future__ import annotations

import re
import sys
import textwrap
from importlib import metadata

_MODULE_FILE = re.compile(r"([A-Za-z_]\w*)(\.py|\..*\.(so|pyd)|\.so|\.pyd)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements() -> list[str]:
    """Every requirement a generated project lists, in any style and with every extra."""
    from torch_scaffold.generate.context import REQUIREMENTS

    return [text for key, text in REQUIREMENTS.items() if key != "python"]


def top_level_modules(dist: metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs."""
    names = set()
    listed = dist.read_text("top_level.txt")
    if listed:
        names |= {line.strip() for line in listed.splitlines() if line.strip()}
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0] in ("..", "__pycache__"):
            continue
        if parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) > 1:
            names.add(parts[0])  # a package folder (or a namespace package, like google/)
        else:
            found = _MODULE_FILE.match(parts[0])
            if found:
                names.add(found.group(1))
    return {name for name in names if name.isidentifier()}


def scan(requirements: list[str]) -> tuple[dict[str, set[str]], set[str]]:
    """({installed distribution: its top-level modules}, names of those not installed)."""
    from packaging.requirements import Requirement

    found: dict[str, set[str]] = {}
    missing: set[str] = set()
    todo = [Requirement(text).name for text in requirements]
    while todo:
        name = _canonical(todo.pop())
        if name in found or name in missing:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        found[name] = top_level_modules(dist)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and "extra" in str(requirement.marker):
                continue  # an optional extra of the dependency, not installed with it
            todo.append(requirement.name)
    return found, missing


def render(found: dict[str, set[str]], missing: set[str]) -> str:
    distributions = sorted(set(found) | missing)
    owners: dict[str, str] = {name.replace("-", "_"): name for name in missing}
    for dist, modules in sorted(found.items(), reverse=True):  # the first name wins
        owners.update({module: dist for module in modules})
    lines = [
        '"""What the generated projects depend on, directly or not (generated: do not edit).',
        "",
        "    python -m torch_scaffold.spec.dependency_scan \\",
        "        > src/torch_scaffold/spec/dependency_names.py",
        "",
        *textwrap.wrap(
            "Not installed when generated (listed by name only): "
            + (", ".join(sorted(missing)) or "none")
            + ".",
            width=95,
        ),
        '"""',
        "",
        "DISTRIBUTIONS = frozenset(",
        "    {",
        *(f'        "{name}",' for name in distributions),
        "    }",
        ")",
        "",
        "# top-level module -> the distribution that installs it",
        "MODULES = {",
        *(f'    "{module}": "{owners[module]}",' for module in sorted(owners)),
        "}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(*scan(project_requirements())))
