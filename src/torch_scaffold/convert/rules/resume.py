"""The resume block: `if args.resume: ckpt = torch.load(P); ...load_state_dict(...)`
-> trainer.fit(ckpt_path=...), which restores model, optimizer, scheduler and loops."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, dotted, method_call, walk
from torch_scaffold.convert.result import KEPT, MOVED, TODO


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


def run(ctx) -> None:
    """`if <opt>: ckpt = torch.load(P) ... optimizer.load_state_dict(...)` -> fit(ckpt_path=...)."""
    loop, parsed = ctx.loop, ctx.parsed
    found = resume_block(parsed, ctx.ix, loop.driver, ctx.raw.replaced)
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
        ctx.plan.removed_functions.append(st)  # the emitter removes it like a function
        lost = sorted(_assigned_names(st) - {code(loads[0].args[0].value)})
        ctx.plan.resume_names = _assigned_names(st)
        ctx.note(
            MOVED,
            f"resume block (lines {parsed.line(st)}-{parsed.end_line(st)}) -> "
            f"trainer.fit(ckpt_path={ckpt}); Lightning restores model, optimizer, scheduler "
            "and the epoch counter",
            st,
        )
        if lost:
            ctx.note(
                TODO if ctx.facts.partial else KEPT,
                "values the resume block restored by hand "
                f"({', '.join(lost)}) start from their defaults; resume needs a checkpoint "
                "written by the converted script",
                st,
            )
        return


def _assigned_names(st) -> set[str]:
    from torch_scaffold.convert.scope import statement_usage

    return statement_usage(body_of(st)).binds
