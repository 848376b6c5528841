"""scheduler.step() sites -> lr_scheduler config (interval, monitor) in configure_optimizers.

trainer_flags.py reports where the scheduler went (optimizer_build.py decides)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, mentions, method_call, stmt, walk
from torch_scaffold.convert.plan import Scheduler
from torch_scaffold.convert.result import TODO


def record(ctx, expr: str, interval: str, call: cst.Call) -> cst.BaseStatement | None:
    """Note a scheduler.step() call; returns the statement that replaces it (or None).

    Lightning calls `step()` without arguments, or `step(metric)` for ReduceLROnPlateau:
    any other argument (`step(epoch)`) is refused, it would be dropped."""
    monitor, replacement = None, None
    last = expr.rsplit(".", 1)[-1]
    plateau = ctx.ix.sched_targets.get(last, "").endswith("ReduceLROnPlateau")
    if (
        (call.args and not plateau)
        or len(call.args) > 1
        or (call.args and call.args[0].keyword is not None)
    ):
        raise Refusal(
            f"`{ctx.driver_expr(call)}`: Lightning calls the scheduler's step() without arguments",
            ctx.line_of_moved(call),
            manual_ok=True,
        )
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


def _scheduler_step(st, roles) -> cst.Call | None:
    """The call of `scheduler.step(...)` when `st` is that call alone; None otherwise."""
    if isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1:
        call = st.body[0].value if isinstance(st.body[0], cst.Expr) else None
        mc = method_call(call) if isinstance(call, cst.Call) else None
        if mc and mc[1] == "step" and roles.is_sched(dotted(mc[0])):
            return call
    return None


def _nested_step(st, roles) -> cst.Call | None:
    for n in walk(st):
        if isinstance(n, cst.Call):
            mc = method_call(n)
            if mc and mc[1] == "step" and roles.is_sched(dotted(mc[0])):
                return n
    return None


_READS = {"state_dict", "get_last_lr", "get_lr"}


def _changes(st, watched: set[str]) -> bool:
    """Whether `st` writes into the optimizer or scheduler (an assignment through them, a
    method other than a read): done after Lightning's step instead of before it, that would
    train differently. Reading them (the lr to print, a state_dict to save) only shows or
    saves a step-old value."""
    from torch_scaffold.convert.rules.optimizer_args import assignment_targets

    for n in walk(st):
        for target in assignment_targets(n):
            if mentions(target, watched):
                return True
        if isinstance(n, cst.Call):
            mc = method_call(n)
            if mc and mc[1] not in _READS and mentions(mc[0], watched):
                return True
    return False


def _saves(st) -> bool:
    return any(
        isinstance(n, cst.Call) and any(w in (dotted(n.func) or "") for w in ("save", "checkpoint"))
        for n in walk(st)
    )


def epoch_steps(ctx, stmts: list, roles, hook: str) -> list:
    """Lightning steps an epoch scheduler once, after on_train_epoch_end: a step() that the
    epoch runs unconditionally at its end, with nothing after it reading the optimizer or
    scheduler, is that; a step under a condition, at the epoch's start, or read after, is not."""
    from torch_scaffold.convert.plan import EPOCH_START

    out, stepped = [], None
    watched = {r.rsplit(".", 1)[-1] for r in [*roles.optimizers, *roles.schedulers]}
    for st in stmts:
        call = _scheduler_step(st, roles)
        if call is not None:
            if hook == EPOCH_START:
                raise Refusal(
                    f"`{ctx.driver_expr(call)}` before the epoch's batches: Lightning steps the "
                    "scheduler at the end of each epoch",
                    ctx.line_of_moved(st),
                )
            rep = record(ctx, dotted(method_call(call)[0]), "epoch", call)
            stepped = call
            if rep is not None:
                out.append(rep)
            continue
        nested = _nested_step(st, roles)
        if nested is not None:
            raise Refusal(
                f"`{ctx.driver_expr(nested)}` runs under a condition or in a loop: Lightning "
                "steps the scheduler once every epoch, unconditionally",
                ctx.line_of_moved(nested),
                manual_ok=True,
            )
        if stepped is not None and mentions(st, watched) and _saves(st):
            ctx.note(
                TODO,
                f"the checkpoint saved after `{ctx.driver_expr(stepped)}` holds the optimizer and "
                "scheduler as they were before the step: Lightning steps the scheduler after "
                "on_train_epoch_end",
                st,
            )
        elif stepped is not None and _changes(st, watched):
            raise Refusal(
                f"`{ctx.driver_expr(stepped)}` is followed by code that reads the optimizer or "
                f"scheduler (line {ctx.line_of_moved(st)}): Lightning steps the scheduler after "
                "the epoch's hooks",
                ctx.line_of_moved(stepped),
            )
        out.append(st)
    return out


def run(ctx) -> None:
    """scheduler.step() in the epoch hooks -> interval="epoch" (the step's are step.py's)."""
    from torch_scaffold.convert.plan import EPOCH_END, EPOCH_START

    if ctx.plan.manual:
        return  # manual optimization: Lightning steps no scheduler, the script's calls stay
    for hook in (EPOCH_START, EPOCH_END):
        ctx.plan.sections[hook] = epoch_steps(ctx, ctx.plan.sections[hook], ctx.plan.roles, hook)
