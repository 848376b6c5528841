"""Statement clean-up inside the moved code: train()/eval() switches, grad-mode `with`
blocks, and statements the other rules emptied (`x, y = x, y`, empty `if`)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, dotted, mentions, method_call, with_body
from torch_scaffold.convert.rules import amp

_MOVES = ("to", "cuda")  # the methods rules/device.py rewrites


def _is_mode_switch(st, roles) -> bool:
    if (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Expr)
    ):
        mc = method_call(st.body[0].value) if isinstance(st.body[0].value, cst.Call) else None
        return bool(mc and mc[1] in ("train", "eval") and dotted(mc[0]) in roles.models)
    return False


_BOILERPLATE = ("init_process_group", "destroy_process_group", "barrier", "set_device")


def _boilerplate(st) -> str | None:
    """Process-group set-up and sampler.set_epoch(): Lightning does them. What it is, or None."""
    if (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Expr)
    ):
        call = st.body[0].value
        mc = method_call(call) if isinstance(call, cst.Call) else None
        if mc and mc[1] == "set_epoch" and "sampler" in (dotted(mc[0]) or "").lower():
            return "sampler.set_epoch()"
        name = dotted(call.func) if isinstance(call, cst.Call) else None
        if name and name.rsplit(".", 1)[-1] in _BOILERPLATE and ("dist" in name or "cuda" in name):
            return "process-group set-up calls"
    return None


def _trivial(st) -> bool:
    if (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Assign)
    ):
        a = st.body[0]
        return len(a.targets) == 1 and code(a.targets[0].target) == code(a.value)
    if (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Expr)
    ):
        return isinstance(st.body[0].value, (cst.Name, cst.Attribute))
    return False


def clean(ctx, stmts: list, roles, in_step: bool, whole_step: bool = False) -> list:
    """Drop mode switches and grad-mode blocks (in_step) and anything left empty.
    whole_step: `stmts` is all of training_step, so an autocast block among them that is
    the only code autocast would cast can become the Trainer's precision."""
    out = []
    for st in stmts:
        if in_step and _is_mode_switch(st, roles):
            ctx.count_removed("model.train()/eval()")
            continue
        whole = whole_step and all(amp.casts_nothing(o) for o in stmts if o is not st)
        if in_step and isinstance(st, cst.With) and amp.transparent_with(ctx, st, whole):
            ctx.count_removed("no_grad/inference_mode/set_grad_enabled/autocast blocks")
            out += clean(ctx, body_of(st), roles, in_step)
            continue
        if _trivial(st):
            continue
        what = _boilerplate(st)
        if what:
            ctx.count_removed(what)
            continue
        if isinstance(st, (cst.If, cst.With, cst.For, cst.While)) and isinstance(
            st.body, cst.IndentedBlock
        ):
            inner = clean(ctx, body_of(st), roles, in_step)
            if not inner:
                if isinstance(st, cst.If) and st.orelse is None:
                    continue
                if isinstance(st, (cst.With, cst.For, cst.While)):
                    continue
            st = with_body(st, inner)
        out.append(st)
    return out


def run(ctx) -> None:
    """Per hook: device moves (dropped in the step, to Lightning's device elsewhere), then
    the statements that leaves behind."""
    from torch_scaffold.convert.plan import BEFORE_OPT, EPOCH_END, EPOCH_START, HOOKS, TRAIN_STEP
    from torch_scaffold.convert.rules.contexts import decide_outer_autocast
    from torch_scaffold.convert.rules.device import CudaToDevice, DropMoves
    from torch_scaffold.convert.rules.step import drop_optimizer_stmt

    plan, roles = ctx.plan, ctx.plan.roles
    decide_outer_autocast(ctx)
    # zero_grad() and the like, outside the step; with manual optimization Lightning calls
    # none of them (nor scheduler.step()), so the script's stay
    for hook in (EPOCH_START, EPOCH_END) if not plan.manual else ():
        plan.sections[hook] = [
            s for s in plan.sections[hook] if not drop_optimizer_stmt(ctx, s, roles)
        ]
    for hook in HOOKS:
        in_step = hook in (TRAIN_STEP, BEFORE_OPT)
        mover = DropMoves(ctx, roles) if in_step else CudaToDevice()
        # only statements that name a move can change: the rest stay unrebuilt
        stmts = [s.visit(mover) if mentions(s, _MOVES) else s for s in plan.sections[hook]]
        in_step = (in_step or hook == EPOCH_START) and not plan.manual
        whole = hook == TRAIN_STEP and not ctx.loop.closure_fn
        plan.sections[hook] = clean(ctx, stmts, roles, in_step=in_step, whole_step=whole)
