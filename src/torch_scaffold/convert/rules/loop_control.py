"""`break` / `continue` of the converted loops -> stopping the Trainer / leaving the hook.

Leaving the epoch loop (early stopping) becomes `self.trainer.should_stop = True`.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import stmt, visit
from torch_scaffold.convert.result import MOVED


class _Control(cst.CSTTransformer):
    def __init__(self, on_break: list[str], on_continue: list[str]):
        self.depth = 0
        self.on_break, self.on_continue = on_break, on_continue
        self.hits = 0

    def visit_For(self, node):
        self.depth += 1

    def leave_For(self, original, updated):
        self.depth -= 1
        return updated

    def visit_While(self, node):
        self.depth += 1

    def leave_While(self, original, updated):
        self.depth -= 1
        return updated

    def visit_FunctionDef(self, node):
        self.depth += 1

    def leave_FunctionDef(self, original, updated):
        self.depth -= 1
        return updated

    def leave_SimpleStatementLine(self, original, updated):
        if self.depth or len(updated.body) != 1:
            return updated
        small = updated.body[0]
        if isinstance(small, cst.Break):
            self.hits += 1
            return cst.FlattenSentinel(
                [_with_lines(stmt(t), updated, i) for i, t in enumerate(self.on_break)]
            )
        if isinstance(small, cst.Continue):
            self.hits += 1
            return cst.FlattenSentinel(
                [_with_lines(stmt(t), updated, i) for i, t in enumerate(self.on_continue)]
            )
        return updated


def _with_lines(new, old, i):
    return new.with_changes(leading_lines=old.leading_lines) if i == 0 else new


def rewrite(ctx, stmts: list, on_break: list[str], on_continue: list[str], what: str) -> list:
    t = _Control(on_break, on_continue)
    out = [s.visit(t) for s in stmts]
    if t.hits:
        ctx.note(MOVED, f"break/continue of the {what} -> {on_break[0]}")
    return out


STOP = "self.trainer.should_stop = True"


def exits(st) -> set[str]:
    """`break`/`continue` of the loop around `st` that `st` contains (not nested loops')."""
    found: set[str] = set()

    class _Find(cst.CSTVisitor):
        def __init__(self):
            self.depth = 0

        def visit_For(self, node):
            self.depth += 1

        def leave_For(self, node):
            self.depth -= 1

        visit_While = visit_For
        leave_While = leave_For
        visit_FunctionDef = visit_For
        leave_FunctionDef = leave_For

        def visit_Break(self, node):
            if not self.depth:
                found.add("break")

        def visit_Continue(self, node):
            if not self.depth:
                found.add("continue")

    visit(st, _Find())
    return found
