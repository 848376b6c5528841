"""autocast / GradScaler -> Trainer(precision=...)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call
from torch_scaffold.convert.result import MOVED

_AUTOCAST = (
    "torch.autocast",
    "torch.cuda.amp.autocast",
    "torch.amp.autocast",
    "torch.cpu.amp.autocast",
)
_GRAD_CTX = ("torch.no_grad", "torch.inference_mode", "torch.set_grad_enabled", "torch.enable_grad")


def _qname(ctx, node) -> str:
    q = ctx.parsed.qname(node)
    if q:
        return q
    d = dotted(node) or ""
    # moved nodes lose metadata: fall back to the common spellings
    if d in ("autocast", "amp.autocast"):
        return "torch.autocast"
    return d


def is_autocast(ctx, call) -> bool:
    return isinstance(call, cst.Call) and _qname(ctx, call.func) in _AUTOCAST


def is_grad_ctx(ctx, call) -> bool:
    return isinstance(call, cst.Call) and _qname(ctx, call.func) in _GRAD_CTX


def transparent_with(ctx, st: cst.With) -> bool:
    """A `with` whose items only switch autocast / grad mode: safe to unwrap in training_step."""
    ok = True
    for item in st.items:
        if is_autocast(ctx, item.item):
            note_autocast(ctx, item.item)
        elif not is_grad_ctx(ctx, item.item):
            ok = False
    return ok


def note_autocast(ctx, call: cst.Call) -> None:
    if "precision" in ctx.plan.trainer_flags:
        return
    dtype = next((a.value for a in call.args if a.keyword and a.keyword.value == "dtype"), None)
    enabled = next((a.value for a in call.args if a.keyword and a.keyword.value == "enabled"), None)
    kind = "bf16-mixed" if dtype is not None and "bfloat16" in code(dtype) else "16-mixed"
    device_type = next(
        (a.value for a in call.args if a.keyword and a.keyword.value == "device_type"),
        call.args[0].value if call.args and call.args[0].keyword is None else None,
    )
    cuda_only = _qname(ctx, call.func) == "torch.cuda.amp.autocast" or (
        device_type is not None and code(device_type) in ('"cuda"', "'cuda'")
    )
    if enabled is not None and not (isinstance(enabled, cst.Name) and enabled.value == "True"):
        ctx.plan.trainer_flags["precision"] = (
            f'"{kind}" if {ctx.driver_expr(enabled)} else "32-true"'
        )
    elif cuda_only and kind == "16-mixed":
        # CUDA autocast does nothing on a CPU-only machine: keep it that way
        ctx.plan.trainer_flags["precision"] = (
            f'"{kind}" if torch.cuda.is_available() else "32-true"'
        )
    else:
        ctx.plan.trainer_flags["precision"] = f'"{kind}"'
    ctx.note(
        MOVED, f"{code(call.func)}(...) -> Trainer(precision={ctx.plan.trainer_flags['precision']})"
    )


def unscale_loss(ctx, loss, roles):
    """`scaler.scale(loss)` -> `loss`."""
    mc = method_call(loss) if isinstance(loss, cst.Call) else None
    if mc and mc[1] == "scale" and dotted(mc[0]) in roles.scalers and loss.args:
        ctx.count_removed("GradScaler calls")
        ctx.plan.used_scaler = True
        return loss.args[0].value
    return loss


def drop_scaler_stmt(ctx, st, roles) -> bool:
    if not (
        isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Expr)
    ):
        return False
    call = st.body[0].value
    mc = method_call(call) if isinstance(call, cst.Call) else None
    if mc and dotted(mc[0]) in roles.scalers and mc[1] in ("step", "update", "unscale_", "scale"):
        ctx.count_removed("GradScaler calls")
        return True
    return False


def run(ctx) -> None:
    """`scaler = GradScaler(...)` that nothing uses once its calls are gone: remove it too."""
    from torch_scaffold.convert.nodes import walk
    from torch_scaffold.convert.result import REMOVED

    parsed = ctx.parsed
    moved = {id(n) for n in walk(ctx.raw.replaced)}
    moved |= {id(n) for f in ctx.plan.removed_functions for n in walk(f)}
    for name in sorted(ctx.plan.roles.scalers):
        if "." in name or name in ctx.plan.ctor.values():
            continue  # an attribute of a class, or still used by the moved code
        creations, uses = [], 0
        for node in parsed.of_type(cst.SimpleStatementLine, cst.Name):
            if id(node) in moved:
                continue
            if (
                isinstance(node, cst.SimpleStatementLine)
                and len(node.body) == 1
                and isinstance(node.body[0], cst.Assign)
                and len(node.body[0].targets) == 1
                and isinstance(node.body[0].targets[0].target, cst.Name)
                and node.body[0].targets[0].target.value == name
                and isinstance(node.body[0].value, cst.Call)
                and _qname(ctx, node.body[0].value.func).endswith("GradScaler")
            ):
                creations.append(node)
            elif isinstance(node, cst.Name) and node.value == name:
                uses += 1
        if len(creations) == 1 and uses == 1:  # the one use: its own assignment target
            ctx.plan.drop_stmts.append(creations[0])
            ctx.note(
                REMOVED,
                f"`{code(creations[0])[:60]}`: Trainer(precision=...) scales the loss",
                creations[0],
            )
