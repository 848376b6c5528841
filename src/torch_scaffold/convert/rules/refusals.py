"""Patterns we refuse to convert, with the reason and the line."""

from __future__ import annotations

import re

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
    out: list[tuple[str, int | None]] = []
    has_optimizer = bool(ix.optim_targets)
    share_memory = mp_process = None
    for node in walk(parsed.module):
        if isinstance(node, (cst.Name, cst.Attribute)):
            q = parsed.qname(node)
            if q:
                for mod, why in _REFUSED_MODULES.items():
                    if q == mod or q.startswith(mod + "."):
                        out.append((why, parsed.line(node)))
                        break
        if isinstance(node, cst.Call):
            mc = method_call(node)
            q = parsed.qname(node.func) or ""
            if mc and mc[1] == "share_memory":
                share_memory = node
            if q.endswith(("multiprocessing.Process", "multiprocessing.spawn")):
                mp_process = node
            if mc and mc[1] == "step" and isinstance(mc[0], cst.Name) and _ENV.search(mc[0].value):
                out.append(
                    (
                        "reinforcement-learning loop (env.step) has no LightningModule equivalent",
                        parsed.line(node),
                    )
                )
        if isinstance(node, cst.AugAssign) and not has_optimizer and _is_manual_update(node):
            why = (
                "manual parameter update without an optimizer (p -= lr * p.grad); "
                "use a torch.optim optimizer first"
            )
            out.append((why, parsed.line(node)))
        if isinstance(node, (cst.ListComp, cst.For)) and _builds_optimizers(parsed, node):
            why = (
                "one optimizer per layer (local/per-layer training) cannot be expressed "
                "as one LightningModule step"
            )
            out.append((why, parsed.line(node)))
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


def _builds_optimizers(parsed, node) -> bool:
    for n in walk(node.elt if isinstance(node, cst.ListComp) else node.body):
        if isinstance(n, cst.Call):
            q = parsed.qname(n.func) or ""
            if (
                q.startswith("torch.optim.")
                and not q.startswith("torch.optim.lr_scheduler")
                and q.rsplit(".", 1)[-1][:1].isupper()
            ):
                return True
    return False
