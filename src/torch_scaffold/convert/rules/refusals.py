"""Patterns we refuse to convert, with the reason and the line."""

from __future__ import annotations

import re
from bisect import bisect_left

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call, walk

_ENV = re.compile(r"(^|_)envs?$", re.IGNORECASE)  # env.step(action), train_env.step(...)

_REFUSED_MODULES = {
    "gym": "reinforcement-learning environment loop (gym) has no LightningModule equivalent",
    "gymnasium": "reinforcement-learning environment loop (gymnasium) has no LightningModule equivalent",
    "torch.distributed.rpc": "RPC-based training (torch.distributed.rpc) is not supported",
    "torch.distributed.fsdp": "FSDP code must be rewritten by hand (use Trainer(strategy='fsdp'))",
    "torch.distributed.tensor.parallel": "tensor-parallel code must be rewritten by hand",
    "torch.distributed.pipelining": "pipeline-parallel code must be rewritten by hand",
    "deepspeed": "uses DeepSpeed's engine (it runs backward and the step itself): use "
    "Trainer(strategy='deepspeed') by hand",
}

_LIGHTNING = ("lightning", "pytorch_lightning")
_LAUNCHERS = ("multiprocessing.spawn", "multiprocessing.start_processes")


def uses_lightning(parsed) -> str | None:
    """What shows that the script already trains with Lightning (a LightningModule, a
    Trainer or Fabric of the lightning packages), with its line; None when nothing does.
    An import alone (for seed_everything, say) is no sign: such a script still converts."""
    imported = any(base.split(".")[0] in _LIGHTNING for base in parsed.aliases.values())
    for node in parsed.of_type(cst.ClassDef):
        for base in node.bases:
            q = parsed.qname(base.value) or dotted(base.value) or ""
            if q.endswith("LightningModule") and (imported or q.split(".")[0] in _LIGHTNING):
                return f"a LightningModule (class {node.name.value}, line {parsed.line(node)})"
    if not imported:
        return None
    for node in parsed.of_type(cst.Call):
        q = parsed.qname(node.func) or ""
        if q.split(".")[0] in _LIGHTNING and q.rsplit(".", 1)[-1] in ("Trainer", "Fabric"):
            return f"Lightning's {q.rsplit('.', 1)[-1]} (line {parsed.line(node)})"
    return None


def find(parsed, ix) -> list[tuple[str, int | None]]:
    found: list[tuple[int, str, int | None]] = []  # (depth-first position, why, line)
    pos = parsed.index.pos
    has_optimizer = bool(ix.optim_targets)
    share_memory = mp_process = spawn = accelerate = backward_of = None
    heads = _refused_heads(parsed.aliases)
    if heads:
        for node in parsed.of_type(cst.Name, cst.Attribute):
            if _head(node) not in heads:
                continue
            q = parsed.qname(node)
            if q:
                for mod, why in _REFUSED_MODULES.items():
                    if q == mod or q.startswith(mod + "."):
                        found.append((pos[id(node)], why, parsed.line(node)))
                        break
    optimizer_calls = []  # positions of `torch.optim.X(...)` calls
    for node in parsed.of_type(cst.Call):
        mc = method_call(node)
        q = parsed.qname(node.func) or ""
        if mc and mc[1] == "share_memory":
            share_memory = node
        if q.endswith(("multiprocessing.Process",) + _LAUNCHERS):
            mp_process = node
        if q.endswith(_LAUNCHERS) and spawn is None:
            spawn = node
        if q.split(".")[0] == "accelerate" and accelerate is None:
            accelerate = node
        if mc and mc[1] == "backward" and node.args and node.args[0].keyword is None:
            backward_of = backward_of or node  # `accelerator.backward(loss)`
        if mc and mc[1] == "step" and isinstance(mc[0], cst.Name) and _ENV.search(mc[0].value):
            why = "reinforcement-learning loop (env.step) has no LightningModule equivalent"
            found.append((pos[id(node)], why, parsed.line(node)))
        if _is_optimizer_class(q):
            optimizer_calls.append(pos[id(node)])
    if not has_optimizer:
        for node in parsed.of_type(cst.AugAssign):
            if _is_manual_update(node):
                why = (
                    "manual parameter update without an optimizer (p -= lr * p.grad); "
                    "use a torch.optim optimizer first"
                )
                found.append((pos[id(node)], why, parsed.line(node)))
    if optimizer_calls:
        for node in parsed.of_type(cst.ListComp, cst.For):
            if _builds_optimizers(parsed, node, optimizer_calls) and not _trains(node):
                why = (
                    "one optimizer per layer (local/per-layer training) cannot be expressed "
                    "as one LightningModule step"
                )
                found.append((pos[id(node)], why, parsed.line(node)))
    found.sort(key=lambda f: f[0])  # the script's order
    out = [(why, line) for _, why, line in found]
    if share_memory is not None and mp_process is not None:
        out.append(
            (
                "multiprocessing hogwild training (share_memory + mp.Process) is not supported",
                parsed.line(mp_process),
            )
        )
    elif spawn is not None:
        why = (
            f"starts its own processes with {code(spawn.func)}() (line {parsed.line(spawn)}): "
            "Lightning launches the training processes itself, so the converted script "
            "would launch inside a launch; remove the spawn and pass "
            'Trainer(strategy="ddp", devices=N) by hand'
        )
        out.append((why, parsed.line(spawn)))
    if accelerate is not None:
        at = backward_of or accelerate
        why = (
            f"uses Accelerate (`{code(at)[:50]}`, line {parsed.line(at)}): Accelerate "
            "already runs the devices, precision and backward() that Lightning would; "
            "convert it by hand (or keep it)"
        )
        out.append((why, parsed.line(at)))
    # keep the first reason per line
    seen, unique = set(), []
    for why, line in out:
        if (why, line) not in seen:
            seen.add((why, line))
            unique.append((why, line))
    return unique


def _is_manual_update(node: cst.AugAssign) -> bool:
    if not isinstance(node.operator, cst.SubtractAssign):
        return False
    return any(isinstance(n, cst.Attribute) and n.attr.value == "grad" for n in walk(node.value))


def _is_optimizer_class(q: str) -> bool:
    return (
        q.startswith("torch.optim.")
        and not q.startswith("torch.optim.lr_scheduler")
        and q.rsplit(".", 1)[-1][:1].isupper()
    )


def _builds_optimizers(parsed, node, optimizer_calls: list[int]) -> bool:
    """Whether a list comprehension's element or a loop's body constructs an optimizer."""
    part = node.elt if isinstance(node, cst.ListComp) else node.body
    lo = parsed.index.pos[id(part)]
    hi = parsed.index.end[lo]
    at = bisect_left(optimizer_calls, lo)
    return at < len(optimizer_calls) and optimizer_calls[at] < hi


def _trains(node) -> bool:
    """Whether a loop's body runs backward() itself: a loop that builds an optimizer and
    trains with it (one run per fold or per seed) is not one optimizer per layer."""
    if isinstance(node, cst.ListComp):
        return False
    return any(
        isinstance(n, cst.Call) and (method_call(n) or (None, ""))[1] == "backward"
        for n in walk(node.body)
    )


def _refused_heads(aliases: dict[str, str]) -> set[str]:
    """Local names whose qualified names can fall inside a refused module."""
    heads = set()
    for local, base in aliases.items():
        for mod in _REFUSED_MODULES:
            if base == mod or base.startswith(mod + ".") or mod.startswith(base + "."):
                heads.add(local)
                break
    return heads


def _head(node) -> str | None:
    """`torch` of `torch.distributed.rpc`; None when the chain does not start with a name."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None
