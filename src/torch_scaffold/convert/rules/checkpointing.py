"""Checkpoints.

- saving a full checkpoint (a dict holding an optimizer's state_dict) each epoch
  -> ModelCheckpoint(save_last=True) (Lightning saves model, optimizer, scheduler, loops);
- a resume block (`if args.resume: ckpt = torch.load(...); ...load_state_dict(...)`)
  -> trainer.fit(ckpt_path=...);
- saving the plain model's state_dict (best weights, final weights) stays as written.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, dotted, method_call, walk
from torch_scaffold.convert.result import KEPT, MOVED, TODO


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


def resume_block(parsed, ix, driver, stop_at):
    """`(if statement, torch.load call)` of the resume block before `stop_at`, or None:
    an `if <opt>:` that loads a checkpoint and restores an optimizer's state."""
    for st in body_of(driver):
        if st is stop_at:
            break
        if not isinstance(st, cst.If) or st.orelse is not None:
            continue
        loads = [
            n
            for n in walk(st)
            if isinstance(n, cst.Call)
            and (parsed.qname(n.func) == "torch.load" or dotted(n.func) == "torch.load")
            and n.args
        ]
        restores_opt = any(
            isinstance(n, cst.Call)
            and method_call(n)
            and method_call(n)[1] == "load_state_dict"
            and (dotted(method_call(n)[0]) or "").rsplit(".", 1)[-1] in ix.optim_targets
            for n in walk(st)
        )
        if loads and restores_opt:
            return st, loads[0]
    return None


def resume(ctx) -> None:
    """`if <opt>: ckpt = torch.load(P) ... optimizer.load_state_dict(...)` -> fit(ckpt_path=...)."""
    facts, parsed = ctx.facts, ctx.parsed
    found = resume_block(parsed, ctx.ix, facts.driver, ctx.raw.replaced)
    if found is not None:
        st, load = found
        loads = [load]
        path = loads[0].args[0].value
        test = st.test
        if code(path) == code(test):
            ckpt = f"{code(path)} or None"
        else:
            from torch_scaffold.convert.precedence import fix

            ckpt = code(fix(cst.IfExp(test=test, body=path, orelse=cst.Name("None"))))
        ctx.plan.fit_kwargs["ckpt_path"] = ckpt
        ctx.removed_resume = st
        lost = sorted(_assigned_names(st) - {code(loads[0].args[0].value)})
        ctx.resume_names = _assigned_names(st)
        ctx.note(
            MOVED,
            f"resume block (lines {parsed.line(st)}-{parsed.end_line(st)}) -> "
            f"trainer.fit(ckpt_path={ckpt}); Lightning restores model, optimizer, scheduler "
            "and the epoch counter",
            st,
        )
        if lost:
            ctx.note(
                TODO if ctx.partial else KEPT,
                "values the resume block restored by hand "
                f"({', '.join(lost)}) start from their defaults; resume needs a checkpoint "
                "written by the converted script",
                st,
            )
        return


def _assigned_names(st) -> set[str]:
    from torch_scaffold.convert.scope import statement_usage

    return statement_usage(body_of(st)).binds
