"""Device handling: Lightning moves the model and each batch, so `.to(device)` / `.cuda()`
inside the training step go, and the user's device variable becomes `self.device`."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, method_call, walk
from torch_scaffold.convert.plan import HOST


class DropMoves(cst.CSTTransformer):
    """`x.to(device)` -> `x`, `x.cuda()` -> `x` (training step: the batch is already there)."""

    def __init__(self, ctx, roles):
        self.ctx, self.roles = ctx, roles

    def leave_Call(self, original, updated):
        mc = method_call(updated)
        if mc is None:
            return updated
        receiver, meth = mc
        if meth == "cuda" and not updated.args:
            self.ctx.count_removed(".to(device)/.cuda() calls")
            return receiver
        if meth == "to" and updated.args:
            first = updated.args[0]
            if (
                (first.keyword is None or first.keyword.value == "device")
                and dotted(first.value) in self.roles.devices
                and all(
                    a.keyword is not None and a.keyword.value in ("non_blocking", "copy")
                    for a in updated.args[1:]
                )
            ):
                self.ctx.count_removed(".to(device)/.cuda() calls")
                return receiver
        return updated


class CudaToDevice(cst.CSTTransformer):
    """Outside the training step keep the move, but to Lightning's device."""

    def leave_Call(self, original, updated):
        mc = method_call(updated)
        if mc and mc[1] == "cuda" and not updated.args:
            return updated.with_changes(
                func=updated.func.with_changes(attr=cst.Name("to")),
                args=[cst.Arg(cst.parse_expression("self.device"))],
            )
        return updated


# --- where the script trains: the Trainer's accelerator and devices -------------------------


@dataclass(frozen=True)
class Placement:
    """The device the script puts its model on, spelled for the Trainer call."""

    accelerator: str  # a Trainer expression: '"cpu"', '"gpu" if torch.cuda.is_available() ...'
    devices: str
    cuda_when: str | None  # an expression true exactly when it trains on CUDA ("True", ...)
    cpu_only: bool  # it never trains on CUDA
    why: str  # for the report


_CPU = Placement('"cpu"', "1", None, True, "the script never moves its model to a GPU")


def placement(ctx) -> Placement:
    """Where the script puts its model: Lightning then puts the model and every batch there.

    Facts, in order: the model's own moves (`model.to(device)`, `Net().cuda()`, under an `if`
    the Trainer can evaluate), then the device the batches are moved to. What cannot be told
    is a refusal: Lightning's "auto" would pick every GPU (DDP) on a multi-GPU machine."""
    if ctx.plan.placement is None:
        ctx.plan.placement = _placement(ctx)
    return ctx.plan.placement


def _placement(ctx) -> Placement:
    failure = None
    try:
        moves = _model_moves(ctx)
        found = [m for m in moves if m[1][0] != "cpu"] or moves
        if found:
            return _spelled(ctx, *found[0])
    except Refusal as r:  # the batches' device may still tell: they go where the model is
        failure = r
    for dev in sorted(ctx.plan.roles.devices):
        where = _resolve(ctx, cst.parse_expression(dev.replace(HOST, "self")), None, 0)
        if where is not None:
            return _spelled(ctx, None, where)
    if failure is not None:
        raise failure
    for call in ctx.parsed.of_type(cst.Call):  # a model of another name, moved to a GPU
        mc = method_call(call)
        if mc is not None and mc[1] == "cuda":
            return _spelled(ctx, call, ("gpu", None))
    return _CPU


def _spelled(ctx, node, where) -> Placement:
    from torch_scaffold.convert.rules.distributed import _condition, _Unknown

    line = f" (line {ctx.lineof(node)})" if node is not None else ""
    guard = None
    if node is not None:
        try:
            guard = _condition(ctx, node)
        except _Unknown:
            raise Refusal(
                f"the model moves to a device under a condition the Trainer call cannot "
                f"evaluate{line}: cannot tell which device to train on (Lightning's "
                '"auto" would take every GPU)',
                ctx.lineof(node),
            ) from None
    kind, arg = where
    if kind == "cpu":
        return Placement('"cpu"', "1", None, True, f"the script trains on the CPU{line}")
    if kind == "mps":
        return Placement('"mps"', "1", None, True, f"the script trains on Apple's MPS{line}")
    if kind == "gpu":
        devices = f"[{arg}]" if arg else "1"
        test = "True"
    elif kind == "cond":
        devices, test = "1", arg
    else:  # "var": the script's own device expression, visible where the Trainer is built
        accelerator, when = f"torch.device({arg}).type", f'torch.device({arg}).type == "cuda"'
        if guard is not None:
            accelerator = f'{accelerator} if {code(guard)} else "cpu"'
            when = f"{code(guard)} and {when}"
        return Placement(accelerator, "1", when, False, f"the script's device `{arg}`{line}")
    if guard is not None:
        test = code(guard) if test == "True" else f"{code(guard)} and {test}"
    if test == "True":
        return Placement('"gpu"', devices, "True", False, f"the script trains on one GPU{line}")
    return Placement(
        f'"gpu" if {test} else "cpu"',
        devices,
        test,
        False,
        f"the script trains on one GPU when `{test}`, else on the CPU{line}",
    )


def _model_names(ctx) -> set[str]:
    names = {m.rsplit(".", 1)[-1] for m in ctx.ix.optimized_models}
    names |= {m.rsplit(".", 1)[-1] for m in ctx.plan.roles.models}
    return names


def _model_moves(ctx) -> list:
    """(call, where) for every move of a model, in the script's order; where as _resolve."""
    names = _model_names(ctx)
    parsed = ctx.parsed
    out = []
    for call in parsed.of_type(cst.Call):
        mc = method_call(call)
        if mc is None or mc[1] not in ("to", "cuda", "cpu"):
            continue
        receiver, meth = mc
        if not (_last(receiver) in names or _assigned_to(parsed, call) in names):
            continue
        if meth == "cpu":
            where = ("cpu", None)
        elif meth == "cuda":
            index = call.args[0].value if call.args else None
            if index is not None and not isinstance(index, cst.Integer):
                where = None
            else:
                where = ("gpu", index.value if index is not None and index.value != "0" else None)
        else:
            arg = next(
                (a.value for a in call.args if a.keyword is None or a.keyword.value == "device"),
                None,
            )
            if arg is None or _is_dtype(ctx, arg) or "dtype" in (_last(arg) or ""):
                continue
            where = _resolve(ctx, arg, call, 0)
        if where is None:
            raise Refusal(
                f"cannot tell which device the model moves to at line {ctx.lineof(call)} "
                f'(`{code(call)[:60]}`): Lightning\'s "auto" would take every GPU; move it to '
                "a device variable the training loop's scope can see",
                ctx.lineof(call),
            )
        out.append((call, where))
    return out


def _last(expr) -> str | None:
    d = dotted(expr)
    return d.rsplit(".", 1)[-1] if d else None


def _assigned_to(parsed, call) -> str | None:
    """`model = Net().to(device)`: the target the move's chain is assigned to."""
    top = call
    while True:
        parent = parsed.parent(top)
        if isinstance(parent, cst.Attribute) and isinstance(parsed.parent(parent), cst.Call):
            top = parsed.parent(parent)
            continue
        break
    parent = parsed.parent(top)
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
        return _last(parent.targets[0].target)
    return None


def _is_dtype(ctx, arg) -> bool:
    q = ctx.parsed.qname(arg) or dotted(arg) or ""
    return q.startswith("torch.") and q.rsplit(".", 1)[-1] in _DTYPES


_DTYPES = {
    "float", "float16", "float32", "float64", "half", "double", "bfloat16", "int", "long",
    "int64", "int32", "bool", "uint8", "int8",
}  # fmt: skip


def _resolve(ctx, expr, at, depth):
    """What a device expression is: ("cpu"|"mps", None), ("gpu", index or None),
    ("cond", test spelled at the Trainer call), ("var", the expression spelled there), or
    None when it cannot be told."""
    if depth > 4:
        return None
    if isinstance(expr, cst.SimpleString):
        kind, _, index = expr.evaluated_value.partition(":")
        if kind == "cuda":
            return ("gpu", index if index not in ("", "0") else None)
        return (kind, None) if kind in ("cpu", "mps") else None
    if isinstance(expr, cst.Call) and (ctx.parsed.qname(expr.func) or dotted(expr.func)) in (
        "torch.device",
    ):
        if len(expr.args) == 2 and isinstance(expr.args[1].value, cst.Integer):
            first = _resolve(ctx, expr.args[0].value, at, depth + 1)
            if first == ("gpu", None):
                i = expr.args[1].value.value
                return ("gpu", i if i != "0" else None)
            return None
        if len(expr.args) == 1:
            return _resolve(ctx, expr.args[0].value, at, depth + 1)
        return None
    if isinstance(expr, cst.IfExp):
        body = _resolve(ctx, expr.body, at, depth + 1)
        orelse = _resolve(ctx, expr.orelse, at, depth + 1)
        if body == orelse and body is not None:
            return body
        test = expr.test
        if isinstance(test, cst.Name):  # `use_cuda = torch.cuda.is_available()`, bound once
            test = _single_assignment(ctx, test, at) or test
        is_available = isinstance(test, cst.Call) and (
            ctx.parsed.qname(test.func) == "torch.cuda.is_available"
        )
        if is_available and body == ("gpu", None) and orelse == ("cpu", None):
            return ("cond", "torch.cuda.is_available()")
        return None
    if isinstance(expr, (cst.Name, cst.Attribute)) and dotted(expr) is not None:
        passed = _parameter(ctx, expr, at)
        if passed is not None:  # a parameter: what the call passes, at the call
            return _resolve(ctx, *passed, depth + 1) if passed else None
        value = _single_assignment(ctx, expr, at)
        if value is not None:
            found = _resolve(ctx, value, value, depth + 1)
            if found is not None:
                return found
        spelled = _at_trainer(ctx, expr, at)
        return ("var", spelled) if spelled else None
    return None


def _parameter(ctx, expr, at):
    """For `expr` read at `at` whose head is a parameter of its function: (the expression
    with the argument the training call passes, that call), or () for another function's
    parameter; None when the head is no parameter."""
    from torch_scaffold.convert.scope import param_names, rename

    if at is None:
        return None
    scope = ctx.ix.scope_of(at)
    head = expr
    while isinstance(head, cst.Attribute):
        head = head.value
    if not isinstance(scope, cst.FunctionDef) or not isinstance(head, cst.Name):
        return None
    if head.value not in param_names(scope.params) or head.value == "self":
        return None
    for inline in (ctx.loop.epoch_inline, ctx.loop.step_inline):
        if inline is not None and scope is inline.fn and head.value in inline.bindings:
            return rename(expr, {head.value: inline.bindings[head.value]}), inline.call
    return ()


def _single_assignment(ctx, expr, at):
    """The value of the one plain assignment to `expr` in the script; None when it is bound
    any other way, or more than once."""
    target = dotted(expr)
    values = []
    for node in ctx.parsed.of_type(cst.Assign, cst.AnnAssign, cst.AugAssign, cst.For, cst.With):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                if dotted(t.target) == target:
                    values.append(node.value if len(node.targets) == 1 else None)
                elif any(dotted(n) == target for n in walk(t.target)):
                    values.append(None)  # unpacked: not one value
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            if dotted(node.target) == target:
                values.append(node.value if isinstance(node, cst.AnnAssign) else None)
        elif isinstance(node, cst.For):
            if any(dotted(n) == target for n in walk(node.target)):
                values.append(None)
        else:
            if any(i.asname is not None and dotted(i.asname.name) == target for i in node.items):
                values.append(None)
    return values[0] if len(values) == 1 else None


def _at_trainer(ctx, expr, at) -> str | None:
    """`expr` (read at node `at`) spelled where the Trainer is built, or None."""
    from torch_scaffold.convert.state import driver_locals

    driver = ctx.loop.driver
    if at is None:  # already in the driver's names
        return code(expr)
    scope = ctx.ix.scope_of(at)
    head = expr
    while isinstance(head, cst.Attribute):
        head = head.value
    if not isinstance(head, cst.Name):
        return None
    if scope is driver:
        return code(expr)
    if isinstance(scope, cst.Module):
        if head.value in driver_locals(driver, ctx.raw.replaced):
            return None  # the driver's own name of the same spelling hides it
        return code(expr)
    passed = _parameter(ctx, expr, at)
    return _at_trainer(ctx, *passed) if passed else None
