"""Format generated Python with black, in-process (black is imported only here, lazily)."""

from __future__ import annotations

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
    return {
        path: format_python(text, path) if path.endswith(".py") else text
        for path, text in files.items()
    }
