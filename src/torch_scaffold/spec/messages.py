"""Show user values inside one-line error messages: quoted, escaped, shortened."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def show_text(text: str, limit: int = 40) -> str:
    """A string as a single-line, quoted literal, shortened to about `limit` characters."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    # repr escapes newlines, tabs and control characters, so the message stays one line
    return repr(shown)


def show_value(kind: str, value: Any, text: str = "") -> str:
    """Describe a loaded YAML value for 'expected X, got Y' messages."""
    if kind == "map":
        return "a mapping"
    if kind == "seq":
        return "a list"
    if kind == "null":
        return "nothing (null)"
    if kind == "str":
        return f"the text {show_text(value)}"
    if kind == "bool":
        return f"the boolean {text or str(value).lower()}"
    if kind == "timestamp":
        return f"the date {text}"
    return show_text(text, 40)[1:-1] if text else repr(value)


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """The closest option to `word` (case-insensitive), or None."""
    options = [str(o) for o in options]
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return lowered[close[0]]
    # `cosine_annealing` -> `cosine`, `16` -> `16-mixed`: one is the start of the other
    starts = [o for o in lowered if word.lower().startswith(o) or o.startswith(word.lower())]
    return lowered[max(starts, key=len)] if word and starts else None


def one_of(options: Iterable[Any]) -> str:
    return ", ".join(str(o) for o in options)


def show_number(value: float) -> str:
    """Numbers as people write them in a spec: 0.001, 0 (not 0.0), 1000000."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return str(value)
