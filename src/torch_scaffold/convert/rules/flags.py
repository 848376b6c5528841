"""Flags set at the start of an epoch (`training = optimizer is not None`) whose only readers
the other passes removed: dropped."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.plan import BATCH_END, BEFORE_OPT, EPOCH_END, EPOCH_START, TRAIN_STEP
from torch_scaffold.convert.scope import statement_usage


def run(ctx) -> None:
    sections = ctx.plan.sections
    reads = set()
    for hook in (TRAIN_STEP, BEFORE_OPT, BATCH_END, EPOCH_END):
        reads |= statement_usage(sections.get(hook) or []).reads
    sections[EPOCH_START] = drop_dead_flags(sections[EPOCH_START], reads)


def drop_dead_flags(stmts: list, used_elsewhere: set[str]) -> list:
    """`training = optimizer is not None` whose only readers were removed: drop it."""
    out = []
    for i, st in enumerate(stmts):
        if (
            isinstance(st, cst.SimpleStatementLine)
            and len(st.body) == 1
            and isinstance(st.body[0], cst.Assign)
        ):
            a = st.body[0]
            pure = isinstance(
                a.value,
                (
                    cst.Comparison,
                    cst.BooleanOperation,
                    cst.Name,
                    cst.Integer,
                    cst.Float,
                    cst.SimpleString,
                    cst.UnaryOperation,
                ),
            )
            names = [t.target.value for t in a.targets if isinstance(t.target, cst.Name)]
            if pure and len(names) == len(a.targets):
                later = statement_usage(stmts[i + 1 :]).reads
                if not any(n in later or n in used_elsewhere for n in names):
                    continue
        out.append(st)
    return out
