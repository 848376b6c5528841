"""What made a project, kept inside it: the spec as given, the style, the scaffold version, and
the pristine render (the merge base of `scaffold update`).

    .scaffold/project.yaml   small and readable: version, style, the spec file's path and the
                             sha256 of its text, --set overrides, the spec's text
    .scaffold/base.json      every generated file as scaffold wrote it ({path: text})

The pristine render is stored rather than re-rendered, so an update still has its merge base
after scaffold itself was upgraded and the old templates are gone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from torch_scaffold import __version__
from torch_scaffold.errors import OutputError
from torch_scaffold.generate.write import stays_inside

FOLDER = ".scaffold"
PROJECT_FILE = f"{FOLDER}/project.yaml"
BASE_FILE = f"{FOLDER}/base.json"
FORMAT = 1


@dataclass(frozen=True)
class Provenance:
    style: str
    spec_text: str
    spec_source: str  # the spec's path when it was read (relative paths in it resolve there)
    overrides: list[str] = field(default_factory=list)
    version: str = __version__
    base: dict[str, str] = field(default_factory=dict)  # the pristine render


def provenance_files(record: Provenance) -> dict[str, str]:
    """The two files that record `record`, ready to be written with the project."""
    project = {
        "format": FORMAT,
        "scaffold_version": record.version,
        "style": record.style,
        "spec_source": record.spec_source,
        "spec_sha256": spec_hash(record.spec_text),  # of `spec`: what the file held when read
        "overrides": list(record.overrides),
        "spec": record.spec_text,
    }
    header = "# Written by scaffold: what rendered this project. `scaffold update` reads it.\n"
    text = header + yaml.safe_dump(project, sort_keys=False, allow_unicode=True, width=100)
    base = json.dumps(record.base, indent=0, sort_keys=True, ensure_ascii=False) + "\n"
    return {PROJECT_FILE: text, BASE_FILE: base}


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_scaffold_project(folder: Path) -> bool:
    return (folder / PROJECT_FILE).is_file()


def read_provenance(folder: Path) -> Provenance:
    """The record in folder, or an OutputError (exit 2) naming the file and what is wrong."""
    project_path, base_path = folder / PROJECT_FILE, folder / BASE_FILE
    if not project_path.is_file():
        raise OutputError(
            f"not a scaffold project (no {PROJECT_FILE})",
            where=str(folder),
            hint="run update in a folder made by `scaffold new`, or give its path: scaffold update DIR",
        )
    try:
        project = yaml.safe_load(project_path.read_text(encoding="utf-8"))
        base = json.loads(base_path.read_text(encoding="utf-8"))
        fields = (project["style"], project["spec"], project["spec_source"], project["overrides"])
        style, spec_text, spec_source, overrides = fields
        if project.get("format") != FORMAT or style not in ("pytorch", "lightning"):
            raise ValueError(f"unknown format {project.get('format')!r} or style {style!r}")
        if not (isinstance(spec_text, str) and isinstance(overrides, list)):
            raise TypeError("spec or overrides of the wrong type")
        if not (isinstance(base, dict) and all(isinstance(v, str) for v in base.values())):
            raise TypeError(f"{BASE_FILE} is not a map of paths to texts")
        outside = sorted(path for path in base if not stays_inside(path))
        if outside:  # a tampered record (a cloned repository) must not reach other files
            raise ValueError(
                f"{BASE_FILE} lists {outside[0]!r}, not the path of a file inside the project"
            )
    except FileNotFoundError as err:
        raise OutputError(
            f"{Path(err.filename).name} is missing",
            where=str(folder / FOLDER),
            hint="restore .scaffold/ from version control (git checkout -- .scaffold)",
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, KeyError, TypeError) as err:
        raise OutputError(
            f"the provenance record is corrupt ({type(err).__name__}: {err})",
            where=str(folder / FOLDER),
            hint="restore .scaffold/ from version control (git checkout -- .scaffold)",
        ) from None
    return Provenance(
        style=style,
        spec_text=spec_text,
        spec_source=str(spec_source),
        overrides=[str(item) for item in overrides],
        version=str(project.get("scaffold_version", "")),
        base=base,
    )
