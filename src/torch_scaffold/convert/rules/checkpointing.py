"""Saving checkpoints (the resume block is rules/resume.py).

- saving a full checkpoint (a dict holding an optimizer's state_dict) each epoch
  -> ModelCheckpoint(save_last=True) (Lightning saves model, optimizer, scheduler, loops);
- saving the plain model's state_dict (best weights, final weights) stays as written.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call, walk
from torch_scaffold.convert.result import MOVED


def _is_save(parsed, call) -> bool:
    return isinstance(call, cst.Call) and (
        parsed.qname(call.func) == "torch.save" or dotted(call.func) == "torch.save"
    )


def _saves_full_checkpoint(ctx, call: cst.Call, roles) -> cst.BaseExpression | None:
    """The path argument when `call` saves a dict with optimizer state (directly or via a helper)."""
    if _is_save(ctx.parsed, call) and len(call.args) >= 2:
        data = call.args[0].value
        if isinstance(data, cst.Dict) and _mentions_optimizer_state(data, roles):
            return call.args[1].value
        return None
    name = dotted(call.func)
    fns = ctx.ix.functions.get(name or "", [])
    if len(fns) == 1:
        fn = fns[0]
        for n in walk(fn):
            if (
                isinstance(n, cst.Call)
                and _is_save(ctx.parsed, n)
                and len(n.args) >= 2
                and isinstance(n.args[0].value, cst.Dict)
                and any(
                    isinstance(x, cst.Call)
                    and method_call(x)
                    and method_call(x)[1] == "state_dict"
                    and "optim" in (dotted(method_call(x)[0]) or "")
                    for x in walk(n.args[0].value)
                )
            ):
                path_param = dotted(n.args[1].value)
                params = [p.name.value for p in fn.params.params]
                if path_param in params:
                    i = params.index(path_param)
                    args = [a for a in call.args if a.keyword is None]
                    if i < len(args):
                        return args[i].value
                return cst.Name("None")
    return None


def _mentions_optimizer_state(data: cst.Dict, roles) -> bool:
    for n in walk(data):
        if isinstance(n, cst.Call):
            mc = method_call(n)
            if (
                mc
                and mc[1] == "state_dict"
                and (dotted(mc[0]) in roles.optimizers or "optim" in (dotted(mc[0]) or ""))
            ):
                return True
    return False


class _DropSaves(cst.CSTTransformer):
    def __init__(self, ctx, roles):
        self.ctx, self.roles = ctx, roles
        self.paths: list = []

    def leave_SimpleStatementLine(self, original, updated):
        if len(updated.body) == 1 and isinstance(updated.body[0], cst.Expr):
            call = updated.body[0].value
            if isinstance(call, cst.Call):
                path = _saves_full_checkpoint(self.ctx, call, self.roles)
                if path is not None:
                    self.paths.append(path)
                    return cst.RemovalSentinel.REMOVE
        return updated


def saves(ctx, stmts: list, roles) -> list:
    t = _DropSaves(ctx, roles)
    out = []
    for s in stmts:
        new = s.visit(t)
        if not isinstance(new, cst.RemovalSentinel):
            out.append(new)
    for path in t.paths[:1]:
        dirpath = None
        if (
            isinstance(path, cst.Call)
            and (dotted(path.func) or "").endswith("path.join")
            and path.args
        ):
            dirpath = ctx.driver_expr(path.args[0].value)
        arg = f"dirpath={dirpath}, " if dirpath else ""
        ctx.plan.callbacks.append(f"pl.callbacks.ModelCheckpoint({arg}save_last=True)")
        ctx.plan.trainer_flags.pop("enable_checkpointing", None)
        ctx.note(
            MOVED,
            f"checkpoint with optimizer state saved each epoch ({code(path)[:50]}) -> "
            f"ModelCheckpoint({arg}save_last=True)",
        )
    return out


def run(ctx) -> None:
    from torch_scaffold.convert.plan import EPOCH_END, EPOCH_START

    for hook in (EPOCH_START, EPOCH_END):
        ctx.plan.sections[hook] = saves(ctx, ctx.plan.sections[hook], ctx.plan.roles)
