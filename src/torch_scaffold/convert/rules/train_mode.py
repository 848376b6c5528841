"""Evaluation code in a hook leaves the model in eval mode: the hook switches back."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, stmt, walk
from torch_scaffold.convert.plan import BATCH_END, EPOCH_END, HOST


def run(ctx) -> None:
    """Evaluation code in a hook leaves the model in eval mode: switch back afterwards.

    Only where the hook (or a function of the script it calls, followed a few calls deep)
    calls `.eval()`: an EMA update or a print does not change the mode."""
    for hook in (EPOCH_END, BATCH_END):
        stmts = ctx.plan.sections.get(hook) or []
        if stmts and calls_eval(ctx, stmts):
            ctx.plan.sections[hook] = stmts + [
                stmt("self.train()  # the evaluation above switched to eval mode")
            ]


def called_functions(ctx, nodes) -> list:
    """The script's own functions (and methods of its classes) the nodes call, resolved by
    name: `evaluate(...)`, `self.evaluate(...)` in a class; not `model.train()`."""
    out = []
    for st in nodes:
        for n in walk(st):
            if not isinstance(n, cst.Call):
                continue
            f = n.func
            name = None
            if isinstance(f, cst.Name):
                name = f.value
            elif isinstance(f, cst.Attribute) and dotted(f.value) in (HOST, "self.host"):
                name = f.attr.value
            for fn in ctx.ix.functions.get(name or "", []):
                if fn not in out:
                    out.append(fn)
    return out


def calls_eval(ctx, nodes, depth: int = 3) -> bool:
    for st in nodes:
        for n in walk(st):
            if not (isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute)):
                continue
            if n.func.attr.value == "eval" and not n.args:
                return True
            if n.func.attr.value == "train" and n.args and code(n.args[0].value) != "True":
                return True  # model.train(False), model.train(training)
    if depth == 0:
        return False
    return any(calls_eval(ctx, [fn], depth - 1) for fn in called_functions(ctx, nodes))
