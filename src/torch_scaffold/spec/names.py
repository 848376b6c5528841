"""Project folder and package names derived from the spec's free-form `name`."""

from __future__ import annotations

import keyword
import re
import sys
import unicodedata

# Top-level names a generated project imports, or that tools treat specially: a package with
# one of these names would shadow the real module for everything run from the project root.
SHADOWED = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "torchmetrics",
        "lightning",
        "pytorch_lightning",
        "lightning_fabric",
        "numpy",
        "pandas",
        "yaml",
        "tensorboard",
        "tqdm",
        "scipy",
        "sklearn",
        "pytest",
        "test",
        "tests",
        "conftest",
        "setup",
        "src",
        "build",
        "dist",
        "data",
        "checkpoints",
        "logs",
        "train",
        "config",
        "site",
        "typing",
        "json",
        "csv",
        "io",
        "os",
        "sys",
        "re",
        "math",
        "random",
        "copy",
        "time",
        "types",
        "abc",
        "enum",
        "logging",
        "pathlib",
        "collections",
        "dataclasses",
        "functools",
        "itertools",
        "argparse",
        "tempfile",
        "shutil",
        "signal",
        "warnings",
        "contextlib",
        "inspect",
        "string",
        "ctypes",
        "platform",
        "pickle",
        "queue",
        "socket",
        "threading",
        "multiprocessing",
    }
)

# Folders a generated project writes runs into at its root (its .gitignore ignores them, and
# `fit` would write into the package): a package of that name would be neither committed nor safe.
RUN_FOLDERS = frozenset({"outputs", "lightning_logs", "mlruns", "wandb"})


def _ascii_words(name: str) -> str:
    # "Café Net" -> "Cafe Net": keep what has an ASCII reading, drop the rest
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


def project_slug(name: str) -> str:
    """Folder / distribution name: lowercase, [a-z0-9-], single dashes, no dash at the ends."""
    slug = re.sub(r"[^a-z0-9]+", "-", _ascii_words(name).lower())
    return slug.strip("-")


# Longer package names do not fit the generated code's 100-column lines (`python -m <package>.train
# [options]`, imports); PEP 8 asks for short package names anyway.
MAX_PACKAGE_LENGTH = 40


def _shorten(package: str) -> str:
    """Cut at the last word boundary that fits (or hard, for one very long word)."""
    if len(package) <= MAX_PACKAGE_LENGTH:
        return package
    cut = package[: MAX_PACKAGE_LENGTH + 1].rsplit("_", 1)[0]
    if len(cut) > MAX_PACKAGE_LENGTH or len(cut) < MAX_PACKAGE_LENGTH // 2:
        cut = package[:MAX_PACKAGE_LENGTH]
    return cut.rstrip("_")


def project_package(name: str) -> str:
    """An importable Python package name that does not shadow a module the project uses."""
    package = _shorten(project_slug(name).replace("-", "_"))
    if not package:
        return ""
    if package[0].isdigit():
        package = "p_" + package
    if (
        keyword.iskeyword(package)
        or keyword.issoftkeyword(package)
        or package in SHADOWED
        or package in RUN_FOLDERS
        or package in sys.stdlib_module_names
    ):
        package += "_project"
    return package


def dependency_clash(name: str) -> tuple[str, str] | None:
    """(what, distribution) when the project would shadow a top-level module that a generated
    project imports through its requirements (directly or not), or take the name of one of
    their distributions (`pip install -e .` would then replace it); None when the name is free.

    Modules are compared without case: on macOS and Windows a `pil` folder is `PIL`. Names of
    the standard library and of the project's own files are no dependencies: `project_package`
    adds `_project` to those.
    """
    from torch_scaffold.spec.dependency_names import DISTRIBUTIONS, MODULES

    slug = project_slug(name)
    module = _shorten(slug.replace("-", "_")).lower()
    for known, distribution in MODULES.items():
        if known.lower() == module:
            return f"the module {known}", distribution
    if slug in DISTRIBUTIONS:
        return f"the distribution {slug}", slug
    return None


def project_names(spec_or_name) -> tuple[str, str]:
    """(slug, package) for a Spec or a name. Both are empty when the name has no letters/digits."""
    name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
    return project_slug(name), project_package(name)
