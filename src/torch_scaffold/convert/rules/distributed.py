"""DDP / DataParallel boilerplate -> Trainer(strategy=..., devices=...).

Lightning launches the processes, sets up the process group, wraps the model and
adds a DistributedSampler, so those lines go.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call
from torch_scaffold.convert.result import MOVED

_WRAPPERS = {
    "torch.nn.parallel.DistributedDataParallel": "ddp",
    "torch.nn.parallel.distributed.DistributedDataParallel": "ddp",
    "torch.nn.DataParallel": "dp",
    "torch.nn.parallel.DataParallel": "dp",
}
_SETUP = (
    "torch.distributed.init_process_group",
    "torch.distributed.destroy_process_group",
    "torch.distributed.barrier",
    "torch.cuda.set_device",
)


def find(ctx) -> None:
    """Record wrapper assignments and process-group calls to rewrite in the whole module."""
    parsed = ctx.parsed
    ctx.unwrap_calls, ctx.drop_stmts, ctx.sampler_calls = [], [], {}
    for node in parsed.all_nodes:
        if isinstance(node, cst.Call):
            q = parsed.qname(node.func) or ""
            kind = _WRAPPERS.get(q)
            if kind and node.args:
                ctx.unwrap_calls.append(node)
                if kind == "ddp":
                    ctx.plan.trainer_flags["strategy"] = '"ddp"'
                    ctx.note(
                        MOVED,
                        f'{code(node)[:50]} -> Trainer(strategy="ddp") (Lightning wraps the model)',
                        node,
                    )
                else:
                    ctx.note(
                        MOVED,
                        f'{code(node)[:50]} -> Trainer(devices="auto") (Lightning uses DDP, '
                        "not DataParallel)",
                        node,
                    )
                ctx.plan.trainer_flags.setdefault("devices", '"auto"')
            elif q.endswith("DistributedSampler") and node.args:
                shuffle = next(
                    (a.value for a in node.args if a.keyword and a.keyword.value == "shuffle"), None
                )
                kind = (
                    "SequentialSampler"
                    if shuffle is not None and code(shuffle) == "False"
                    else "RandomSampler"
                )
                ctx.sampler_calls[node] = f"torch.utils.data.{kind}({code(node.args[0].value)})"
                ctx.note(
                    MOVED,
                    f"DistributedSampler at line {parsed.line(node)} -> {kind} (Lightning adds the "
                    "DistributedSampler itself when it runs DDP)",
                    None,
                )
            elif q in _SETUP:
                stmt_node = parsed.parent(parsed.parent(node))
                if isinstance(stmt_node, cst.SimpleStatementLine) and len(stmt_node.body) == 1:
                    ctx.drop_stmts.append(stmt_node)
                    ctx.count_removed("process-group set-up calls")
            mc = method_call(node)
            if mc and mc[1] == "set_epoch" and "sampler" in (dotted(mc[0]) or "").lower():
                stmt_node = parsed.parent(parsed.parent(node))
                if isinstance(stmt_node, cst.SimpleStatementLine):
                    ctx.drop_stmts.append(stmt_node)
                    ctx.count_removed("sampler.set_epoch()")
