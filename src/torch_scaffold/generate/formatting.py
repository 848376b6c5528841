"""Format generated Python with black, in-process (black is imported only here, lazily).

Results are cached on disk by input text and black version (generate/cache.py): a project
rendered before costs no black run, nor black's import. A cached result that does not parse
as Python is recomputed, never copied into a project (its checksum may have been recomputed
too); a cache folder that others may write is not used at all (cache.py).
"""

from __future__ import annotations

import ast
from importlib.metadata import version

from torch_scaffold.generate import cache

LINE_LENGTH = 100  # matches [tool.black] in the generated pyproject.toml


class FormattingError(Exception):
    """Black rejected a rendered file: a template bug, reported with the file name."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path


def format_python(source: str, path: str = "<generated>") -> str:
    import black

    try:
        return black.format_str(source, mode=black.Mode(line_length=LINE_LENGTH))
    except black.InvalidInput as err:
        raise FormattingError(path, f"not valid Python after rendering ({err})") from err


def format_files(files: dict[str, str]) -> dict[str, str]:
    """Every .py file black-formatted; other files as given."""
    folder = cache.subfolder("black")
    black_version = version("black")
    formatted: dict[str, str] = {}
    for path, text in files.items():
        if not path.endswith(".py"):
            formatted[path] = text
            continue
        key = cache.key_of("black", black_version, str(LINE_LENGTH), text)
        result = cache.read_text(folder, key, parses)
        if result is None:
            result = format_python(text, path)
            cache.write_text(folder, key, result)
        formatted[path] = result
    return formatted


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):  # ValueError: a NUL byte
        return False
    return True
