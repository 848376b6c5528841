"""Counts in messages read as English: `1 file`, `2 files`."""

from __future__ import annotations


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
