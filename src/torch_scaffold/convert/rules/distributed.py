"""DDP / DataParallel boilerplate -> Trainer(strategy=..., devices=...).

A DDP script runs under torchrun: the Trainer gets strategy="ddp" and devices="auto" (Lightning
then checks the device count against torchrun's world size). DataParallel is one process: one
device (trainer_flags.py).

Lightning launches the processes, sets up the process group, wraps the model and
adds a DistributedSampler, so those lines go.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call, walk
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


class _Unknown(Exception):
    """The condition guarding a wrapper cannot be spelled where the Trainer is built."""


def _guard(ctx, node) -> list[cst.BaseExpression]:
    """The tests that must hold for `node` to run, innermost last, within its scope."""
    parsed = ctx.parsed
    tests: list[cst.BaseExpression] = []
    cur, child = parsed.parent(node), node
    while cur is not None and not isinstance(cur, (cst.FunctionDef, cst.Module, cst.Lambda)):
        if isinstance(cur, (cst.If, cst.IfExp)):
            if child is cur.body:
                tests.append(cur.test)
            elif child is cur.orelse:
                tests.append(cst.UnaryOperation(cst.Not(), cur.test))
        elif isinstance(cur, cst.Else):
            owner = parsed.parent(cur)
            if isinstance(owner, cst.If):
                tests.append(cst.UnaryOperation(cst.Not(), owner.test))
                child, cur = owner, parsed.parent(owner)
                continue
        child, cur = cur, parsed.parent(cur)
    tests.reverse()
    return tests


def _condition(ctx, node) -> cst.BaseExpression | None:
    """Where `node` runs only under a condition: that condition, spelled in the scope that
    builds the Trainer (None: it always runs). Raises _Unknown when it cannot be spelled."""
    from torch_scaffold.convert.scope import expr_reads, statement_usage
    from torch_scaffold.convert.state import driver_locals

    tests = _guard(ctx, node)
    if not tests:
        return None
    scope = ctx.ix.scope_of(node)
    driver = ctx.loop.driver
    if scope is not driver and not isinstance(scope, cst.Module):
        raise _Unknown  # a condition on another function's names
    names = set()
    for t in tests:
        names |= set(expr_reads(t))
        if any(isinstance(n, (cst.NamedExpr, cst.Await, cst.Yield)) for n in walk(t)):
            raise _Unknown
    if scope is not driver and names & driver_locals(driver, ctx.raw.replaced):
        raise _Unknown  # the driver has names of its own that shadow the module's
    # the condition's names must not change between the wrapper and the training loop
    top = node
    while ctx.parsed.parent(top) is not None and ctx.parsed.parent(top) is not scope:
        top = ctx.parsed.parent(top)
    body = list(scope.body.body) if isinstance(scope, cst.FunctionDef) else list(scope.body)
    if any(s is top for s in body):
        at = next(i for i, s in enumerate(body) if s is top)
        later = statement_usage(body[at:]).binds
        if names & later:
            raise _Unknown
    expr = tests[0]
    for t in tests[1:]:
        expr = cst.BooleanOperation(left=expr, operator=cst.And(), right=t)
    return expr


def run(ctx) -> None:
    """Record wrapper assignments and process-group calls to rewrite in the whole module."""
    from torch_scaffold.convert.precedence import fix
    from torch_scaffold.convert.result import KEPT

    parsed = ctx.parsed
    ddp_conditions: list = []  # None: unconditional
    unknown = []
    moved = {id(n) for n in walk(ctx.raw.replaced)}  # the hooks' rules clean up in there
    for node in parsed.of_type(cst.Call):  # the if below always holds
        if isinstance(node, cst.Call):
            q = parsed.qname(node.func) or ""
            kind = _WRAPPERS.get(q)
            if kind and node.args:
                ctx.plan.unwrap_calls.append(node)
                if kind == "ddp":
                    try:
                        ddp_conditions.append(_condition(ctx, node))
                    except _Unknown:
                        unknown.append(node)
                else:
                    ctx.note(
                        MOVED,
                        f"{code(node)[:50]} -> one device: DataParallel splits each batch "
                        "within one process (the same step, except BatchNorm's statistics, "
                        "which it computes per GPU); Lightning on several GPUs would run DDP, "
                        "another batch size and data split",
                        node,
                    )
            elif q.endswith("DistributedSampler") and node.args:
                shuffle = next(
                    (a.value for a in node.args if a.keyword and a.keyword.value == "shuffle"), None
                )
                kind = (
                    "SequentialSampler"
                    if shuffle is not None and code(shuffle) == "False"
                    else "RandomSampler"
                )
                ctx.plan.sampler_calls[node] = (
                    f"torch.utils.data.{kind}({code(node.args[0].value)})"
                )
                ctx.note(
                    MOVED,
                    f"DistributedSampler at line {parsed.line(node)} -> {kind} (Lightning adds the "
                    "DistributedSampler itself when it runs DDP)",
                    None,
                )
            elif q in _SETUP and id(node) not in moved:
                stmt_node = parsed.parent(parsed.parent(node))
                if isinstance(stmt_node, cst.SimpleStatementLine) and len(stmt_node.body) == 1:
                    ctx.plan.drop_stmts.append(stmt_node)
                    ctx.count_removed("process-group set-up calls")
            mc = method_call(node)
            if (
                mc
                and mc[1] == "set_epoch"
                and "sampler" in (dotted(mc[0]) or "").lower()
                and id(node) not in moved
            ):
                stmt_node = parsed.parent(parsed.parent(node))
                if isinstance(stmt_node, cst.SimpleStatementLine):
                    ctx.plan.drop_stmts.append(stmt_node)
                    ctx.count_removed("sampler.set_epoch()")
    first = ctx.plan.unwrap_calls[0] if ctx.plan.unwrap_calls else None
    if unknown:
        ctx.note(
            KEPT,
            f"DistributedDataParallel at line {parsed.line(unknown[0])} is used only under a "
            "condition the Trainer call cannot evaluate: Trainer keeps its default "
            'strategy ("auto"); pass strategy="ddp" where the script runs distributed',
            unknown[0],
        )
        return
    if not ddp_conditions:
        return
    if any(c is None for c in ddp_conditions):
        ctx.plan.trainer_flags["strategy"] = '"ddp"'
        ctx.note(
            MOVED,
            f'{code(first)[:50]} -> Trainer(strategy="ddp") (Lightning wraps the model)',
            first,
        )
        return
    conds, seen = [], set()
    for c in ddp_conditions:
        if code(c) not in seen:
            seen.add(code(c))
            conds.append(c)
    test = conds[0]
    for c in conds[1:]:
        test = cst.BooleanOperation(left=test, operator=cst.Or(), right=c)
    expr = fix(
        cst.IfExp(test=test, body=cst.SimpleString('"ddp"'), orelse=cst.SimpleString('"auto"'))
    )
    ctx.plan.trainer_flags["strategy"] = code(expr)
    ctx.note(
        MOVED,
        f"{code(first)[:50]} runs only when `{code(fix(test))}` -> "
        f"Trainer(strategy={code(expr)}) (Lightning wraps the model)",
        first,
    )
