"""clip_grad_norm_ / clip_grad_value_ -> Trainer(gradient_clip_val, gradient_clip_algorithm)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted
from torch_scaffold.convert.result import MOVED

_CLIP = {"clip_grad_norm_": "norm", "clip_grad_value_": "value", "clip_grad_norm": "norm"}


def _clip_call(ctx, st):
    if not (isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1):
        return None, None
    small = st.body[0]
    value = getattr(small, "value", None)
    if not isinstance(value, cst.Call):
        return None, None
    name = (dotted(value.func) or "").rsplit(".", 1)[-1]
    if name in _CLIP:
        return value, small
    return None, None


def take(ctx, st, roles) -> bool:
    """True when the statement became a Trainer flag (and is to be dropped)."""
    call, small = _clip_call(ctx, st)
    if call is None:
        return False
    if not isinstance(small, cst.Expr):
        ctx.note(MOVED, f"{code(call)[:60]} (its result is used) -> on_before_optimizer_step", st)
        return False
    algo = _CLIP[(dotted(call.func) or "").rsplit(".", 1)[-1]]
    args = [a for a in call.args if a.keyword is None]
    kw = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    val = kw.get("max_norm") or kw.get("clip_value") or (args[1].value if len(args) > 1 else None)
    norm_type = kw.get("norm_type") or (args[2].value if len(args) > 2 else None)
    if val is None or (norm_type is not None and code(norm_type) not in ("2", "2.0")):
        return False
    ctx.plan.trainer_flags["gradient_clip_val"] = ctx.driver_expr(val)
    ctx.plan.trainer_flags["gradient_clip_algorithm"] = f'"{algo}"'
    ctx.note(
        MOVED,
        f"{dotted(call.func).rsplit('.', 1)[-1]}(..., {ctx.driver_expr(val)}) -> "
        f'Trainer(gradient_clip_val={ctx.driver_expr(val)}, gradient_clip_algorithm="{algo}")',
        st,
    )
    return True
