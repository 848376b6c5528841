"""`break` / `continue` of the converted loops -> stopping the Trainer / leaving the hook.

Leaving the epoch loop (early stopping) becomes `self.trainer.should_stop = True`.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, holds, stmt, visit
from torch_scaffold.convert.plan import EPOCH_END
from torch_scaffold.convert.result import MOVED, REMOVED
from torch_scaffold.convert.scope import expr_reads


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
    out = [s.visit(t) if holds(s, cst.Break, cst.Continue) else s for s in stmts]
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


def run(ctx) -> None:
    """Each hook leaves the way its part of the loop did."""
    from torch_scaffold.convert.plan import BATCH_END, BEFORE_OPT, EPOCH_START, HOOKS, TRAIN_STEP

    plan = ctx.plan
    for hook in HOOKS:
        stmts = plan.sections[hook]
        if hook == TRAIN_STEP:
            if plan.manual:
                stmts = rewrite(ctx, stmts, [STOP, "return None"], ["return None"], "batch loop")
        elif hook in (BATCH_END, BEFORE_OPT):
            stmts = rewrite(ctx, stmts, [STOP, "return"], ["return"], "batch loop")
        elif hook == EPOCH_START:
            stmts = _epoch_start(ctx, stmts)
        else:
            stmts = rewrite(ctx, stmts, [STOP, "return"], ["return"], "epoch loop")
        plan.sections[hook] = stmts


def _epoch_start(ctx, stmts: list) -> list:
    """`continue`/`break` before the batch loop of an epoch.

    `continue` there skips the epoch's training, which on_train_epoch_start cannot do: it is
    refused, unless its test reads what the removed resume block restored (skipping the
    epochs a checkpoint already covers: fit(ckpt_path=...) resumes at the saved epoch
    itself, so the test goes). `break` stops the Trainer before the epoch's batches, and
    on_train_epoch_end, which the original skipped too, returns at once.
    """
    out = []
    breaks = False
    for st in stmts:
        kinds = exits(st)
        if "continue" in kinds:
            test_names = set()
            if isinstance(st, cst.If):
                test_names = set(expr_reads(st.test))
            resumed = test_names & ctx.plan.resume_names
            if resumed and kinds == {"continue"} and isinstance(st, cst.If) and st.orelse is None:
                ctx.note(
                    REMOVED,
                    f"`if {code(st.test)}: ... continue` (skipping epochs a checkpoint covers): "
                    "trainer.fit(ckpt_path=...) resumes at the saved epoch",
                    st,
                )
                continue
            raise Refusal(
                "`continue` before the batch loop skips an epoch's training; Lightning cannot "
                "skip an epoch from on_train_epoch_start (filter the epochs in the range, or "
                "move the test into the batch loop)",
                ctx.lineof(st),
            )
        breaks = breaks or "break" in kinds
        out.append(st)
    if breaks:
        flag = "self._stopped_before_epoch"
        out = rewrite(ctx, out, [STOP, f"{flag} = True", "return"], ["return"], "epoch loop")
        ctx.plan.state_init_none.append(flag.split(".", 1)[1])
        if ctx.plan.sections.get(EPOCH_END):
            ctx.plan.sections[EPOCH_END] = [
                stmt(f"if {flag}:  # the loop stopped before this epoch's batches\n    return\n")
            ] + ctx.plan.sections[EPOCH_END]
    return out
