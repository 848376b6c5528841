"""Patterns we refuse to convert, with the reason and the line."""

from __future__ import annotations

import re
from bisect import bisect_left

import libcst as cst

from torch_scaffold.convert.nodes import method_call, walk

_ENV = re.compile(r"(^|_)envs?$", re.IGNORECASE)  # env.step(action), train_env.step(...)

_REFUSED_MODULES = {
    "gym": "reinforcement-learning environment loop (gym) has no LightningModule equivalent",
    "gymnasium": "reinforcement-learning environment loop (gymnasium) has no LightningModule equivalent",
    "torch.distributed.rpc": "RPC-based training (torch.distributed.rpc) is not supported",
    "torch.distributed.fsdp": "FSDP code must be rewritten by hand (use Trainer(strategy='fsdp'))",
    "torch.distributed.tensor.parallel": "tensor-parallel code must be rewritten by hand",
    "torch.distributed.pipelining": "pipeline-parallel code must be rewritten by hand",
}


def find(parsed, ix) -> list[tuple[str, int | None]]:
    found: list[tuple[int, str, int | None]] = []  # (depth-first position, why, line)
    pos = parsed.index.pos
    has_optimizer = bool(ix.optim_targets)
    share_memory = mp_process = None
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
        if q.endswith(("multiprocessing.Process", "multiprocessing.spawn")):
            mp_process = node
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
            if _builds_optimizers(parsed, node, optimizer_calls):
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
