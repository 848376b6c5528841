"""Parse a long script in pieces of about CHUNK_LINES lines, cut between top-level
statements, and join the pieces into the tree a single parse gives.

libcst's native parser holds about 400 bytes per byte of source while it works (a 1 MB
script peaks at 450 MB, ten times the finished tree) and the freed memory stays with the
process. Parsed piece by piece, that peak is one piece's, not the script's: with pieces of
500 lines the peak RSS of a whole conversion stays near 5-6x the parse tree from 1,000 to
100,000 lines (benchmarks/convert_speed.py), and parsing gets no slower.

A piece starts at a line that begins a top-level statement: code in column 0 right after a
blank line. A line like that inside a string or brackets leaves the piece before it
unterminated, so that piece fails to parse and the script is parsed whole; a cut is never
trusted without both pieces parsing. Joined, the blank lines that ended a piece (its
footer) become the leading lines of the next piece's first statement, as in one parse.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import libcst as cst

CHUNK_LINES = 500  # a piece's length in lines, at least (it ends at the next cut)

# column-0 lines that close a bracket or a string, comments, and the clauses that continue
# a compound statement: never a cut
_NOT_A_START = (")", "]", "}", "'", '"', "#")
_CLAUSE = re.compile(r"(else|elif|except|finally)\b")


@dataclass
class Piece:
    """One parsed piece: its statements in the joined module, its text, its first line."""

    statements: list[cst.BaseStatement]
    text: str
    first_line: int  # 1-based line of the whole script where the piece starts


def _cuts(lines: list[str], every: int) -> list[int]:
    """0-based line indices where pieces after the first start."""
    cuts = []
    last = 0
    for k in range(every, len(lines) - every // 2):
        if k - last < every:
            continue
        line = lines[k]
        if not line or line[0] in " \t\r\n\f" or line.startswith(_NOT_A_START):
            continue
        if _CLAUSE.match(line) or lines[k - 1].strip():
            continue
        cuts.append(k)
        last = k
    return cuts


def parse_in_pieces(source: str, every: int = CHUNK_LINES) -> tuple[cst.Module, list[Piece]] | None:
    """The module and its pieces, or None when the script is parsed whole (short, no cut,
    a piece that does not parse, or pieces that disagree on indentation or newlines)."""
    if "\r" in source and "\r\n" not in source:
        return None  # old Mac line ends: lines are not split on "\n"
    lines = source.split("\n")
    if len(lines) < 2 * every:
        return None
    cuts = _cuts(lines, every)
    if not cuts:
        return None
    bounds = [0, *cuts, len(lines)]
    texts = [
        "\n".join(lines[a:b]) + ("\n" if b < len(lines) else "")
        for a, b in itertools.pairwise(bounds)
    ]
    modules = []
    for text in texts:
        try:
            modules.append(cst.parse_module(text))
        except (cst.ParserSyntaxError, RecursionError, MemoryError):
            return None  # the whole parse reports the error with its true line
    first = modules[0]
    for m in modules[1:]:
        if (
            m.header
            or not m.body
            or m.default_indent != first.default_indent
            or m.default_newline != first.default_newline
        ):
            return None
    body: list[cst.BaseStatement] = []
    pieces = []
    previous: cst.Module | None = None
    for m, text, start in zip(modules, texts, bounds):
        stmts = list(m.body)
        if previous is not None:
            head = stmts[0]
            stmts[0] = head.with_changes(leading_lines=[*previous.footer, *head.leading_lines])
        body += stmts
        pieces.append(Piece(stmts, text, start + 1))
        previous = m
    last = modules[-1]
    module = first.with_changes(
        body=body, footer=last.footer, has_trailing_newline=last.has_trailing_newline
    )
    return module, pieces
