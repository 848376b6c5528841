"""autocast / GradScaler -> Trainer(precision=...)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, method_call, walk
from torch_scaffold.convert.result import KEPT, MOVED, REMOVED

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


def transparent_with(ctx, st: cst.With, whole_step: bool = False) -> bool:
    """A `with` whose items only switch grad mode, or autocast that becomes the Trainer's
    precision: safe to unwrap in training_step. `whole_step`: nothing else in the step
    computes anything autocast would cast."""
    calls = [item.item for item in st.items]
    if not all(is_autocast(ctx, c) or is_grad_ctx(ctx, c) for c in calls):
        return False
    return all(becomes_precision(ctx, c, whole_step) for c in calls if is_autocast(ctx, c))


# Calls autocast leaves alone: moves, casts, shapes, Python builtins, the optimizer's and the
# scaler's own calls. Anything else outside a region might be an op autocast would cast.
_CASTS_NOTHING = {
    "to", "cuda", "cpu", "float", "double", "half", "long", "int", "bool", "type", "item",
    "detach", "numpy", "tolist", "size", "dim", "numel", "zero_grad", "step", "update",
    "scale", "unscale_", "backward", "append", "extend", "train", "eval", "print", "len",
    "isinstance", "range", "enumerate", "zip", "str", "format", "set_postfix",
    "set_description", "write", "contiguous", "view", "reshape", "squeeze", "unsqueeze",
    "permute", "flatten", "clone", "time", "perf_counter", "requires_grad_",
}  # fmt: skip


def casts_nothing(st) -> bool:
    """Whether a statement runs the same inside an autocast region as outside it."""
    for n in walk(st):
        if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.MatrixMultiply):
            return False
        if isinstance(n, cst.Call):
            name = dotted(n.func) or (
                n.func.attr.value if isinstance(n.func, cst.Attribute) else ""
            )
            if name.rsplit(".", 1)[-1] not in _CASTS_NOTHING:
                return False
    return True


def _arg(call: cst.Call, keyword: str, position: int | None):
    for i, a in enumerate(call.args):
        if (a.keyword is not None and a.keyword.value == keyword) or (
            a.keyword is None and i == position
        ):
            return a.value
    return None


def becomes_precision(ctx, call: cst.Call, whole_step: bool) -> bool:
    """Decide one autocast region: it becomes Trainer(precision=...) where that casts the
    same code on the same device (True: the region goes), else it stays as written in the
    hook (False), where it does exactly what it did."""
    why = _precision(ctx, call, whole_step)
    if why is None:
        return True
    from torch_scaffold.convert.rules.device import placement

    device_type, dtype, enabled = _autocast_args(ctx, call)
    off = isinstance(enabled, cst.Name) and enabled.value == "False"
    can_fp16_on_cuda = (
        device_type in ("cuda", None)
        and dtype != "bf16"
        and not off
        and not placement(ctx).cpu_only
    )
    ctx.plan.kept_autocast.append((call, can_fp16_on_cuda))
    ctx.note(KEPT, f"`{code(call)[:60]}` kept as written in the hook: {why}", call)
    return False


FOLLOWS = "the training device"


def _autocast_args(ctx, call):
    """(device_type, "bf16" | "fp16" | None (unknown), enabled expression or None)."""
    q = _qname(ctx, call.func)
    if q == "torch.cuda.amp.autocast":
        device_type, dtype, enabled = "cuda", _arg(call, "dtype", 1), _arg(call, "enabled", 0)
    elif q == "torch.cpu.amp.autocast":
        device_type, dtype, enabled = "cpu", _arg(call, "dtype", 1), _arg(call, "enabled", 0)
    else:
        d = _arg(call, "device_type", 0)
        device_type = d.evaluated_value if isinstance(d, cst.SimpleString) else None
        if (
            isinstance(d, cst.Attribute)
            and d.attr.value == "type"
            and dotted(d.value) in ctx.plan.roles.devices
        ):
            device_type = FOLLOWS  # `device.type`: the device the batches (and model) are on
        dtype, enabled = _arg(call, "dtype", 1), _arg(call, "enabled", 2)
    if dtype is None:
        kind = {"cuda": "fp16", "cpu": "bf16"}.get(device_type)
    else:
        text = code(dtype)
        kind = (
            "bf16" if "bfloat16" in text else "fp16" if text.endswith(("float16", "half")) else None
        )
    return device_type, kind, enabled


def _precision(ctx, call: cst.Call, whole_step: bool) -> str | None:
    """Set the Trainer's precision for this region and return None, or say why not."""
    from torch_scaffold.convert.rules.device import placement
    from torch_scaffold.convert.scope import bound_names, expr_reads

    if not whole_step:
        return (
            "it covers only part of the step (Trainer precision would cast the whole "
            "training_step, the loss included)"
        )
    known = {"device_type", "dtype", "enabled", "cache_enabled", None}
    if any(a.keyword is not None and a.keyword.value not in known for a in call.args):
        return "it takes arguments the Trainer's precision has no equivalent for"
    device_type, dtype, enabled = _autocast_args(ctx, call)
    if device_type is None or dtype is None:
        return "its device type or dtype is not a literal the Trainer's precision can match"
    where = placement(ctx)
    follows = device_type == FOLLOWS
    if follows:
        # on a GPU it is CUDA autocast; on the CPU it stays, as written, in the hook
        if where.cpu_only:
            return "it autocasts on the CPU the script trains on"
        if dtype == "fp16" and not ctx.plan.roles.scalers:
            return 'no GradScaler: precision="16-mixed" would add loss scaling'
        when = where.cuda_when
    elif device_type == "cuda":
        if where.cpu_only:
            return "CUDA autocast does nothing where the script trains (not on a GPU)"
        if dtype == "fp16" and not ctx.plan.roles.scalers:
            return 'no GradScaler: precision="16-mixed" would add loss scaling'
        when = where.cuda_when
    elif device_type == "cpu" and dtype == "bf16" and where.accelerator == '"cpu"':
        when = "True"
    else:
        return f"{device_type} autocast does not match where the script trains"
    if enabled is not None and not (isinstance(enabled, cst.Name) and enabled.value == "True"):
        if isinstance(enabled, cst.Name) and enabled.value == "False":
            return "it is switched off (enabled=False)"
        moved = [s for stmts in ctx.plan.sections.values() for s in stmts]
        if set(expr_reads(enabled)) & bound_names(moved):
            return "its `enabled=` reads names the training loop binds"
        test = ctx.driver_expr(enabled)
        if not isinstance(enabled, (cst.Name, cst.Attribute, cst.Call)):
            test = f"({test})"
        when = test if when == "True" else f"{test} and {when}"
    kind = "bf16-mixed" if dtype == "bf16" else "16-mixed"
    flag = f'"{kind}"' if when == "True" else f'"{kind}" if {when} else "32-true"'
    flags = ctx.plan.trainer_flags
    if flags.get("precision", flag) != flag:
        return f"another autocast region already set Trainer(precision={flags['precision']})"
    if "precision" not in flags:
        flags["precision"] = flag
        ctx.note(MOVED, f"{code(call.func)}(...) -> Trainer(precision={flag})", call)
    if follows:
        return (
            "its device type is the script's device: on the GPU Trainer(precision=...) "
            "casts the same (the block then changes nothing), elsewhere the block does"
        )
    return None


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

    _scaler_faithful(ctx)
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
                f"`{code(creations[0])[:60]}`: "
                + (
                    "Trainer(precision=...) scales the loss"
                    if ctx.plan.trainer_flags.get("precision")
                    else "unused once its calls are gone"
                ),
                creations[0],
            )


def _scaler_faithful(ctx) -> None:
    """The script's GradScaler goes (its calls are gone). Lightning scales the loss only with
    a 16-mixed precision over the whole step; a scaled loss whose autocast stays a region
    of its own can underflow differently in fp16, so that is refused."""
    if not ctx.plan.used_scaler or ctx.plan.trainer_flags.get("precision"):
        return
    for call, fp16_on_cuda in ctx.plan.kept_autocast:
        if fp16_on_cuda:
            line = ctx.lineof(call)
            raise Refusal(
                f"a GradScaler scales the loss, but `{code(call)[:50]}`"
                + (f" (line {line})" if line else "")
                + " covers only part of the step: Lightning scales the loss only with "
                'precision="16-mixed" over the whole training_step; convert this by hand',
                ctx.lineof(call),
            )
    ctx.note(
        REMOVED,
        "GradScaler: nothing in the step runs in float16 on a GPU, so its scaling changes no "
        "gradient; the Trainer keeps full precision",
    )
