"""One loop iteration -> training_step (+ on_before_optimizer_step, on_train_batch_end).

Automatic optimization: the statements before backward() become training_step and
return the loss; zero_grad/backward/step go (Lightning runs them); what ran between
backward() and step() runs in on_before_optimizer_step; what runs after step() and
touches the model (EMA updates, evaluation) runs in on_train_batch_end.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import body_of, code, dotted, method_call, stmt, walk
from torch_scaffold.convert.plan import BATCH_END, BEFORE_OPT, TRAIN_STEP
from torch_scaffold.convert.result import MOVED, TODO
from torch_scaffold.convert.rules import amp, clipping


def _backward_target(call: cst.Call) -> cst.BaseExpression:
    mc = method_call(call)
    if mc is None:  # torch.autograd.backward(loss)
        return call.args[0].value
    return mc[0]


def _has_backward(node) -> cst.Call | None:
    for n in walk(node):
        if isinstance(n, cst.Call):
            mc = method_call(n)
            if mc and mc[1] == "backward":
                return n
            if dotted(n.func) in ("torch.autograd.backward",):
                return n
    return None


def _steps_optimizer(node, roles) -> bool:
    for n in walk(node):
        if isinstance(n, cst.Call):
            mc = method_call(n)
            if mc and mc[1] == "step":
                d = dotted(mc[0])
                if roles.is_opt(d) or d in roles.scalers:
                    return True
    return False


def _is_step_call(n, roles) -> bool:
    mc = method_call(n) if isinstance(n, cst.Call) else None
    return (
        mc is not None
        and mc[1] == "step"
        and (roles.is_opt(dotted(mc[0])) or dotted(mc[0]) in roles.scalers)
    )


class _NotFixed(Exception):
    """The number of optimizer steps per iteration is not a fixed fact of the code."""

    def __init__(self, node, why: str):
        self.node, self.why = node, why


def _literal_range(it: cst.BaseExpression) -> int | None:
    """`range(5)` -> 5; anything else -> None."""
    if (
        isinstance(it, cst.Call)
        and dotted(it.func) == "range"
        and len(it.args) == 1
        and isinstance(it.args[0].value, cst.Integer)
        and it.args[0].keyword is None
    ):
        return int(it.args[0].value.value, 0)
    return None


def _steps_in(node, roles) -> int:
    """Optimizer steps that `node` runs, every time it runs; _NotFixed when that varies."""
    if not _steps_optimizer(node, roles):
        return 0
    if isinstance(node, cst.SimpleStatementLine):
        for n in walk(node):
            if isinstance(n, (cst.IfExp, cst.BooleanOperation, cst.Lambda)):
                raise _NotFixed(node, "an optimizer steps under a condition")
        return sum(1 for n in walk(node) if _is_step_call(n, roles))
    if isinstance(node, cst.With):
        return sum(_steps_in(s, roles) for s in node.body.body)
    times = _literal_range(node.iter) if isinstance(node, cst.For) else None
    if times is not None and node.orelse is None:
        return times * sum(_steps_in(s, roles) for s in node.body.body)
    raise _NotFixed(node, "an optimizer steps under a condition or in a loop")


def steps_per_iteration(body: list, roles) -> tuple[int | None, cst.CSTNode | None, str]:
    """How many optimizer.step() calls one iteration of the loop makes: Lightning's manual
    optimization counts each as a global step. (n, None, "") when n is the same on every
    iteration, else (None, node, why)."""
    for st in body:
        for n in walk(st):
            # an iteration that ends early makes fewer steps (or an inner loop that breaks)
            if isinstance(n, (cst.Continue, cst.Break, cst.Return)):
                return None, n, "an iteration may end early (continue/break/return)"
    try:
        return sum(_steps_in(st, roles) for st in body), None, ""
    except _NotFixed as e:
        return None, e.node, e.why


def _mentions(node, exprs: set[str]) -> bool:
    for n in walk(node):
        if isinstance(n, (cst.Name, cst.Attribute)) and dotted(n) in exprs:
            return True
    return False


def _accum_factor(test: cst.BaseExpression) -> cst.BaseExpression | None:
    for n in walk(test):
        if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.Modulo):
            return n.right
    return None


def _check_window(ctx, st: cst.If, factor) -> None:
    """Lightning steps when (batch_idx + 1) % N == 0, batch_idx counting the batches of the
    epoch from 0, and divides the loss by N. The script's `if` must count the same: the
    loop's own 0-based batch index, as `(i + 1) % N == 0` or `i % N == N - 1`; and its
    loss must be divided by N (accumulation.py removes that division, and refuses where
    there is none). A step loop's max_steps would count optimizer steps, not batches."""
    raw, n = ctx.raw, code(factor)
    i = raw.index_var
    forms = {f"({i} + 1) % {n} == 0", f"{i} % {n} == {n} - 1", f"(1 + {i}) % {n} == 0"}
    offset = code(raw.index_offset) if raw.index_offset is not None else None
    if offset == "1":
        forms = {f"{i} % {n} == 0"}  # enumerate(loader, 1): i is batch_idx + 1
    test = st.test
    last = None
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        # `... or (i + 1) == len(loader)`: the epoch's last batch steps too, as in Lightning
        data = code(raw.train_data) if raw.train_data is not None else None
        ends = {f"({i} + 1) == len({data})", f"{i} + 1 == len({data})", f"{i} == len({data}) - 1"}
        if offset == "1":
            ends = {f"{i} == len({data})"}
        last, test = code(test.right), test.left
        if last not in ends:
            test = st.test
    if raw.max_steps is not None or raw.train_data is None:
        why = "a loop that counts steps: Lightning's max_steps would count optimizer steps"
    elif i is None or code(test) not in forms:
        why = (
            "Lightning counts the window from each epoch's first batch "
            "((batch_idx + 1) % N == 0); this condition counts something else"
        )
    else:
        ctx.plan.accum_full_windows_only = last is None
        return
    raise Refusal(
        f"gradient accumulation `if {ctx.driver_expr(st.test)}`: {why}",
        ctx.line_of_moved(st),
        manual_ok=True,
    )


def flatten(ctx, body: list, roles, clean_before: bool = True) -> list:
    """Unwrap `with autocast()` / `if training:` / accumulation ifs around the step.
    clean_before: nothing ahead of `body` in the step computes what autocast would cast."""
    out = []
    for i, st in enumerate(body):
        clean_before = clean_before and all(amp.casts_nothing(b) for b in body[i - 1 : i] if i)
        if (
            isinstance(st, cst.With)
            and _has_backward(st)
            and amp.transparent_with(ctx, st, clean_before and _clean_after_backward(st))
        ):
            out += flatten(ctx, body_of(st), roles, clean_before)
        elif (
            isinstance(st, cst.If)
            and st.orelse is None
            and (_has_backward(st) or _steps_optimizer(st, roles))
        ):
            factor = None if _has_backward(st) else _accum_factor(st.test)
            if factor is not None:
                _check_window(ctx, st, factor)
                ctx.plan.trainer_flags["accumulate_grad_batches"] = code(factor)
                ctx.note(
                    MOVED,
                    f"gradient accumulation `if {code(st.test)}` -> "
                    f"Trainer(accumulate_grad_batches={code(factor)})",
                    st,
                )
                ctx.plan.accum_factor = code(factor)
            elif not _has_backward(st):
                if not ctx.facts.partial:
                    raise Refusal(
                        f"optimizer step guarded by `if {ctx.driver_expr(st.test)}`: Lightning "
                        "steps every batch",
                        ctx.line_of_moved(st),
                    )
                ctx.note(
                    TODO,
                    f"optimizer step guarded by `if {code(st.test)}`: Lightning steps every batch",
                    st,
                )
            else:
                ctx.note(
                    MOVED,
                    f"`if {code(st.test)}:` around backward() assumed true in training_step",
                    st,
                )
            out += flatten(ctx, body_of(st), roles, clean_before)
        else:
            out.append(st)
    return out


def _clean_after_backward(st: cst.With) -> bool:
    """The statements in the block after the one that calls backward() cast nothing: in
    Lightning they run after training_step, outside its autocast."""
    body = body_of(st)
    at = next(i for i, s in enumerate(body) if _has_backward(s))
    return all(amp.casts_nothing(s) for s in body[at + 1 :])


def split(ctx, body: list, roles) -> None:
    """Fill TRAIN_STEP / BEFORE_OPT / BATCH_END from one iteration (automatic optimization)."""
    plan = ctx.plan
    body = flatten(ctx, body, roles)
    b = next((i for i, s in enumerate(body) if _has_backward(s)), None)
    if b is None:
        raise Refusal("backward() sits in a construct the converter does not follow")
    call = _has_backward(body[b])
    loss = _backward_target(call)
    loss = amp.unscale_loss(ctx, loss, roles)
    plan.loss_expr = loss
    s = max((i for i, st in enumerate(body) if _steps_optimizer(st, roles)), default=None)
    if ctx.loop.kind == "closure":
        s = b
    if s is None:
        raise Refusal("backward() is not followed by an optimizer step")
    pre, mid, post = body[:b], body[b + 1 : s], body[s + 1 :]
    pre = [st for st in pre if not drop_optimizer_stmt(ctx, st, roles)]
    ctx.count_removed("backward()")
    # statements between backward and step
    before_opt = []
    for st in mid:
        if clipping.take(ctx, st, roles):
            continue
        if amp.drop_scaler_stmt(ctx, st, roles) or drop_optimizer_stmt(ctx, st, roles):
            continue
        before_opt.append(st)
    # statements after the step: bookkeeping stays in training_step, anything that
    # touches the model or optimizer state after the update goes to on_train_batch_end
    from torch_scaffold.convert.scope import statement_usage

    watch = set(roles.models) | set(roles.optimizers) | set(roles.schedulers)
    watch |= statement_usage(before_opt).binds  # values computed after backward()
    after_step, batch_end = [], []
    for st in post:
        if drop_optimizer_stmt(ctx, st, roles) or amp.drop_scaler_stmt(ctx, st, roles):
            continue
        if batch_end or _mentions(st, watch) or _calls_with_model(st, roles):
            batch_end.append(st)
        else:
            after_step.append(st)
    from torch_scaffold.convert.rules import loop_control

    # leaving the loop before the update skips it; after the update the step is done
    pre = loop_control.rewrite(
        ctx, pre, [loop_control.STOP, "return None"], ["return None"], "batch loop"
    )
    after_step = loop_control.rewrite(ctx, after_step, [loop_control.STOP], ["pass"], "batch loop")
    plan.sections[TRAIN_STEP] = pre + after_step
    plan.sections[BEFORE_OPT] = before_opt
    plan.sections[BATCH_END] = batch_end
    if before_opt:
        ctx.note(
            MOVED,
            f"{len(before_opt)} statement(s) between backward() and step() "
            "-> on_before_optimizer_step",
            before_opt[0],
        )
    if batch_end:
        ctx.note(
            MOVED,
            f"{len(batch_end)} statement(s) after optimizer.step() that use the updated "
            "model -> on_train_batch_end",
            batch_end[0],
        )


def _calls_with_model(st, roles) -> bool:
    for n in walk(st):
        if isinstance(n, cst.Call):
            for a in n.args:
                if dotted(a.value) in roles.models:
                    return True
    return False


def drop_optimizer_stmt(ctx, st, roles) -> bool:
    """zero_grad()/step() of an optimizer, step() of a scheduler: Lightning calls them."""
    if not (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Expr)
    ):
        return False
    call = st.body[0].value
    mc = method_call(call) if isinstance(call, cst.Call) else None
    if mc is None:
        return False
    d, meth = dotted(mc[0]), mc[1]
    if meth == "zero_grad" and (roles.is_opt(d) or d in roles.models):
        ctx.count_removed("zero_grad()")
        return True
    if meth == "step" and roles.is_opt(d):
        ctx.count_removed("optimizer.step()")
        return True
    if meth == "step" and roles.is_sched(d):
        from torch_scaffold.convert.rules import scheduler

        scheduler.record(ctx, d, "step", call)
        return True
    return False


def manual(ctx, body: list, roles) -> None:
    """Two or more optimizers: keep the user's order of updates, Lightning's manual optimization."""
    plan = ctx.plan
    plan.manual = True
    names = roles.optimizers

    class Rewrite(cst.CSTTransformer):
        def leave_Call(self, original, updated):
            mc = method_call(updated)
            if mc and mc[1] == "backward" and not updated.args:
                ctx.count_removed("loss.backward() -> self.manual_backward(loss)")
                return cst.parse_expression(f"self.manual_backward({code(mc[0])})")
            return updated

    plan.manual_steps = steps_per_iteration(body, roles)
    out = [st.visit(Rewrite()) for st in body]
    locals_ = [n.replace(".", "_").replace("__host___", "") for n in names]
    head = ", ".join(locals_)  # self.optimizers() returns one optimizer alone, not a list
    plan.sections[TRAIN_STEP] = [stmt(f"{head} = self.optimizers()")] + out
    plan.sections[BEFORE_OPT] = []
    plan.sections[BATCH_END] = []
    shown = ", ".join(n.replace("__host__", "self") for n in names)
    if len(names) >= 2:
        why = f"{len(names)} optimizers ({shown})"
    else:
        why = f"{shown}, stepped as the script steps it (automatic optimization: {plan.manual_because})"
    ctx.note(
        MOVED,
        f"{why} -> manual optimization (automatic_optimization = False, self.manual_backward)",
    )


CLOSURE_LOSS = "__closure_loss__"  # sections.py's name for what optimizer.step(closure) returns


def run(ctx) -> None:
    """One iteration of the batch loop -> training_step, on_before_optimizer_step and
    on_train_batch_end (manual optimization with two or more optimizers)."""
    plan, loop, roles = ctx.plan, ctx.loop, ctx.plan.roles
    body = plan.sections[TRAIN_STEP]
    if loop.kind == "closure":
        last = body[-1] if body else None
        if (
            last is not None
            and isinstance(last, cst.SimpleStatementLine)
            and code(last).startswith(CLOSURE_LOSS)
        ):
            body = body[:-1]
    if (len(roles.optimizers) >= 2 or plan.manual_because) and loop.kind != "closure":
        manual(ctx, body, roles)
        return
    split(ctx, body, roles)
    if loop.kind != "closure":
        return
    ctx.note(
        MOVED,
        f"{loop.closure_fn.name.value}() closure (lines {ctx.line(loop.closure_fn)}-"
        f"{ctx.parsed.end_line(loop.closure_fn)}) -> training_step (Lightning passes the "
        "closure to the optimizer)",
        None,
    )
    target = ctx.raw.closure_target
    if plan.closure_tail or target is not None:
        pre = []
        if target is not None:
            # optimizer.step(closure) returns the loss of the closure's first call
            # (LBFGS calls it several times); Lightning's outputs hold the last one
            pre = [stmt(f"{code(target)} = self._step_loss")]
            plan.first_closure_loss = True
        plan.sections[BATCH_END] = pre + plan.closure_tail
