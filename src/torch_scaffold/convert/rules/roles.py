"""Name the objects the moved code uses: optimizers, schedulers, scaler, device, models."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import dotted, method_call, walk

_MODEL_METHODS = {"parameters", "named_parameters", "train", "eval", "state_dict"}


@dataclass
class Roles:
    optimizers: list[str] = field(default_factory=list)  # in order of first use
    schedulers: list[str] = field(default_factory=list)
    scalers: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    models: list[str] = field(default_factory=list)
    closure_names: set[str] = field(default_factory=set)

    def is_opt(self, e: str | None) -> bool:
        return e in self.optimizers

    def is_sched(self, e: str | None) -> bool:
        return e in self.schedulers


def _last(d: str) -> str:
    return d.rsplit(".", 1)[-1]


def find(stmts: list[cst.CSTNode], ix, closure_names=()) -> Roles:
    r = Roles(closure_names=set(closure_names))
    step_receivers: list[tuple[str, cst.Call]] = []
    zero_grad: set[str] = set()
    for st in stmts:
        for node in walk(st):
            if isinstance(node, cst.Attribute) and node.attr.value == "param_groups":
                d = dotted(node.value)
                if d and d not in r.optimizers:
                    r.optimizers.append(d)
            if not isinstance(node, cst.Call):
                continue
            mc = method_call(node)
            if mc is None:
                continue
            d = dotted(mc[0])
            meth = mc[1]
            if d is None:
                continue
            if meth == "zero_grad":
                zero_grad.add(d)
            if meth == "step" and "scaler" in _last(d).lower() and node.args:
                opt = dotted(node.args[0].value)
                if opt and opt not in r.optimizers:
                    r.optimizers.append(opt)
            elif meth == "step":
                step_receivers.append((d, node))
            elif meth in ("scale", "unscale_", "update") and ("scaler" in _last(d).lower()):
                r.scalers.add(d)
            elif meth == "to" and node.args:
                dev = dotted(node.args[0].value)
                if dev and "device" in _last(dev).lower():
                    r.devices.add(dev)
            elif meth in _MODEL_METHODS and d not in r.models and d not in r.optimizers:
                r.models.append(d)
            for a in node.args:
                if a.keyword is not None and a.keyword.value == "device":
                    dev = dotted(a.value)
                    if dev and "device" in _last(dev).lower():
                        r.devices.add(dev)
    # names the script binds to a device, whatever they are called: `dev = torch.device(...)`,
    # `dev = "cuda" if torch.cuda.is_available() else "cpu"`
    known = device_names(ix)
    for st in stmts:
        for node in walk(st):
            if not (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and node.func.attr.value == "to"
                and node.args
            ):
                continue
            first = node.args[0]
            dev = dotted(first.value)
            keyword_ok = first.keyword is None or first.keyword.value == "device"
            if dev and keyword_ok and _last(dev) in known:
                r.devices.add(dev)
    for d, call in step_receivers:
        last = _last(d)
        if d in r.scalers:
            continue
        closure = any(
            isinstance(a.value, cst.Name) and a.value.value in r.closure_names for a in call.args
        )
        if closure or last in ix.optim_targets or d in zero_grad or d in r.optimizers:
            kind = "opt"
        elif last in ix.sched_targets or "sched" in last.lower():
            kind = "sched"
        elif "opt" in last.lower():
            kind = "opt"
        elif "scaler" in last.lower():
            r.scalers.add(d)
            continue
        else:
            raise Refusal(f"cannot tell whether `{d}.step()` steps an optimizer or a scheduler")
        target = r.optimizers if kind == "opt" else r.schedulers
        if d not in target:
            target.append(d)
    for d in sorted(zero_grad):
        if d not in r.optimizers and (_last(d) in ix.optim_targets or "opt" in _last(d).lower()):
            r.optimizers.append(d)
    # the modules whose parameters an optimizer updates, when the moved code calls them
    called = {dotted(n.func) for st in stmts for n in walk(st) if isinstance(n, cst.Call)}
    for m in ix.optimized_models:
        last = _last(m)
        for c in called:
            if c and (c == m or c == f"__host__.{last}"):
                if c in r.models:
                    r.models.remove(c)
                r.models.insert(0, c)
    # zero_grad on something that never steps is the model's own zero_grad
    r.models = [m for m in r.models if m not in r.optimizers and m not in r.schedulers]
    return r


def _device_string(node) -> bool:
    """`"cuda"`, `"cuda:0"`, `"cpu"`, `"mps"`."""
    if not isinstance(node, cst.SimpleString):
        return False
    return node.evaluated_value.split(":")[0] in ("cuda", "cpu", "mps")


def device_names(ix) -> set[str]:
    """Names (or attributes) assigned a torch.device or a device string anywhere in the script."""
    out: set[str] = set()
    for node in ix.p.of_type(cst.Assign):
        if len(node.targets) != 1:
            continue
        target = dotted(node.targets[0].target)
        if target is None:
            continue
        v = node.value
        is_device = isinstance(v, cst.Call) and (ix.p.qname(v.func) or dotted(v.func)) in (
            "torch.device",
        )
        if isinstance(v, cst.IfExp):
            is_device = all(_device_string(p) for p in (v.body, v.orelse))
        if is_device:
            out.add(_last(target))
    return out


def run(ctx) -> None:
    """The roles of the names the moved code uses; every later pass reads plan.roles."""
    from torch_scaffold.convert.plan import EPOCH_END, EPOCH_START, HOST, TRAIN_STEP
    from torch_scaffold.convert.scope import rename

    plan, loop = ctx.plan, ctx.loop
    sec = plan.sections
    everything = sec[TRAIN_STEP] + sec[EPOCH_START] + sec[EPOCH_END] + plan.closure_tail
    if loop.closure_step_stmt is not None:
        everything.append(rename(loop.closure_step_stmt, {"self": cst.Name(HOST)}))
    closure_names = {loop.closure_fn.name.value} if loop.closure_fn is not None else set()
    plan.roles = find(everything, ctx.ix, closure_names)
    if not plan.roles.optimizers:
        raise Refusal(
            "backward() runs but no optimizer steps: manual parameter updates are not supported"
        )
