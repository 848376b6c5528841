"""How emitted code is formatted: black, with the project's own settings when it has them.

Only the code the converter writes (the LightningModule, the Trainer call) is formatted;
every line of the script it does not convert stays byte for byte as it was.

`find_style(path)` looks upward from the script for a pyproject.toml with a [tool.black]
or [tool.ruff] table and takes its line length (and black's string-normalization and
magic-trailing-comma switches). It reads files, so the command calls it, not the pure core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_LINE_LENGTH = 88  # black's and ruff's default


@dataclass(frozen=True)
class Style:
    line_length: int = DEFAULT_LINE_LENGTH
    string_normalization: bool = True
    magic_trailing_comma: bool = True
    source: str | None = None  # the pyproject.toml the settings came from


DEFAULT = Style()


def _tool_tables(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    tool = data.get("tool")
    return tool if isinstance(tool, dict) else {}


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def style_from_tables(tool: dict, source: str | None = None) -> Style | None:
    """The style a [tool] table asks for; None when it has neither black nor ruff settings."""
    black = tool.get("black")
    ruff = tool.get("ruff")
    if not isinstance(black, dict) and not isinstance(ruff, dict):
        return None
    black = black if isinstance(black, dict) else {}
    ruff = ruff if isinstance(ruff, dict) else {}
    length = _int(black.get("line-length")) or _int(ruff.get("line-length"))
    return Style(
        line_length=length or DEFAULT_LINE_LENGTH,
        string_normalization=not black.get("skip-string-normalization", False),
        magic_trailing_comma=not black.get("skip-magic-trailing-comma", False),
        source=source,
    )


def find_style(script: str | Path | None) -> Style:
    """The formatting settings of the project holding `script` (black's defaults if none)."""
    if script is None:
        return DEFAULT
    try:
        folder = Path(script).resolve().parent
    except (OSError, RuntimeError):
        return DEFAULT
    for d in [folder, *folder.parents]:
        candidate = d / "pyproject.toml"
        try:
            is_file = candidate.is_file()
        except OSError:
            is_file = False
        if is_file:
            style = style_from_tables(_tool_tables(candidate), str(candidate))
            if style is not None:
                return style
        if (d / ".git").exists():  # the project's root: look no further
            break
    return DEFAULT


def black_format(text: str, style: Style, indent: int = 0) -> str | None:
    """The converter's one call into black: `text` formatted for `style`, minus `indent`
    columns (the block it goes into); None when black refuses it (rare, valid code)."""
    import black

    mode = black.Mode(
        line_length=max(40, style.line_length - indent),
        string_normalization=style.string_normalization,
        magic_trailing_comma=style.magic_trailing_comma,
    )
    try:
        return black.format_str(text, mode=mode)
    except Exception:  # noqa: BLE001 - black's errors have no common base class
        return None
