"""Line numbers for statements, from Python's own parser.

libcst's PositionProvider records a position for every node and was the slowest step
of a conversion. The report only needs lines of statements (an expression reports the
line of its statement), so walk the `ast` tree beside the libcst tree instead.
"""

from __future__ import annotations

import ast

import libcst as cst


def statement_lines(
    module: cst.Module, source: str, pieces=None
) -> dict[int, tuple[int, int]] | None:
    """id(libcst statement) -> (first line, last line); None when `ast` cannot parse it.

    `pieces` (chunks.Piece) are parsed one by one, so that `ast` holds one piece at a time.
    """
    if pieces is None:
        return _lines(list(module.body), source)
    out: dict[int, tuple[int, int]] = {}
    for piece in pieces:
        part = _lines(piece.statements, piece.text)
        if part is None:
            return None
        shift = piece.first_line - 1
        for key, (first, last) in part.items():
            out[key] = (first + shift, last + shift)
    return out


def _lines(stmts: list, source: str) -> dict[int, tuple[int, int]] | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    out: dict[int, tuple[int, int]] = {}
    _block(stmts, tree.body, out)
    return out


def _span(a: ast.AST) -> tuple[int, int]:
    first = min([a.lineno] + [d.lineno for d in getattr(a, "decorator_list", [])])
    return first, a.end_lineno or a.lineno


def _block(stmts: list, asts: list, out: dict) -> None:
    i = 0
    for st in stmts:
        if i >= len(asts):
            return
        if isinstance(st, cst.SimpleStatementLine):
            n = len(st.body)
            group = asts[i : i + n]
            if len(group) != n:
                return
            out[id(st)] = (group[0].lineno, group[-1].end_lineno or group[-1].lineno)
            for small, a in zip(st.body, group):
                out[id(small)] = _span(a)
            i += n
            continue
        a = asts[i]
        i += 1
        out[id(st)] = _span(a)
        _compound(st, a, out)


def _suite(body, asts: list, out: dict) -> None:
    if isinstance(body, cst.SimpleStatementSuite):
        for small, a in zip(body.body, asts):
            out[id(small)] = _span(a)
    elif isinstance(body, cst.IndentedBlock):
        _block(list(body.body), asts, out)


def _compound(st, a, out: dict) -> None:
    if isinstance(st, (cst.FunctionDef, cst.ClassDef, cst.With)) and hasattr(a, "body"):
        _suite(st.body, a.body, out)
    elif isinstance(st, (cst.For, cst.While)) and isinstance(a, (ast.For, ast.AsyncFor, ast.While)):
        _suite(st.body, a.body, out)
        if st.orelse is not None:
            _suite(st.orelse.body, a.orelse, out)
    elif isinstance(st, cst.If) and isinstance(a, ast.If):
        _suite(st.body, a.body, out)
        if isinstance(st.orelse, cst.If):
            _block([st.orelse], a.orelse, out)
        elif st.orelse is not None:
            _suite(st.orelse.body, a.orelse, out)
    elif isinstance(st, cst.Try) and isinstance(a, ast.Try):
        _suite(st.body, a.body, out)
        for h, ah in zip(st.handlers, a.handlers):
            _suite(h.body, ah.body, out)
        if st.orelse is not None:
            _suite(st.orelse.body, a.orelse, out)
        if st.finalbody is not None:
            _suite(st.finalbody.body, a.finalbody, out)
