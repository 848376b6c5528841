"""scheduler.step() sites -> lr_scheduler config (interval, monitor) in configure_optimizers.

trainer_flags.py reports where the scheduler went (optimizer_build.py decides)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call, stmt
from torch_scaffold.convert.plan import Scheduler


def record(ctx, expr: str, interval: str, call: cst.Call) -> cst.BaseStatement | None:
    """Note a scheduler.step() call; returns the statement that replaces it (or None)."""
    monitor, replacement = None, None
    if call.args:
        arg = call.args[0].value
        monitor = arg.value if isinstance(arg, cst.Name) else "monitor"
        replacement = stmt(f'self.log("{monitor}", {code(arg)})')
    existing = next((s for s in ctx.plan.schedulers if s.expr == expr), None)
    if existing is None:
        last = expr.rsplit(".", 1)[-1]
        cls = ctx.ix.sched_targets.get(last, "").rsplit(".", 1)[-1] or "scheduler"
        ctx.plan.schedulers.append(Scheduler(expr, interval, monitor, cls))
    ctx.count_removed("scheduler.step()")
    return replacement


class _EpochSteps(cst.CSTTransformer):
    def __init__(self, ctx, roles):
        self.ctx, self.roles = ctx, roles

    def leave_SimpleStatementLine(self, original, updated):
        if len(updated.body) == 1 and isinstance(updated.body[0], cst.Expr):
            call = updated.body[0].value
            mc = method_call(call) if isinstance(call, cst.Call) else None
            if mc and mc[1] == "step" and self.roles.is_sched(dotted(mc[0])):
                rep = record(self.ctx, dotted(mc[0]), "epoch", call)
                return rep if rep is not None else cst.RemovalSentinel.REMOVE
        return updated


def epoch_steps(ctx, stmts: list, roles) -> list:
    out = []
    for st in stmts:
        new = st.visit(_EpochSteps(ctx, roles))
        if isinstance(new, cst.RemovalSentinel):
            continue
        out.append(new)
    return out


def run(ctx) -> None:
    """scheduler.step() in the epoch hooks -> interval="epoch" (the step's are step.py's)."""
    from torch_scaffold.convert.plan import EPOCH_END, EPOCH_START

    for hook in (EPOCH_START, EPOCH_END):
        ctx.plan.sections[hook] = epoch_steps(ctx, ctx.plan.sections[hook], ctx.plan.roles)
