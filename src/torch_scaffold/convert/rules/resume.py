"""The resume block: `if args.resume: ckpt = torch.load(P); ...load_state_dict(...)`
-> trainer.fit(ckpt_path=...), which restores model, optimizer, scheduler and loops."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, dotted, method_call, walk
from torch_scaffold.convert.result import KEPT, MOVED, TODO


def resume_block(parsed, ix, driver, stop_at):
    """`(if statement, torch.load call)` of the resume block before `stop_at`, or None:
    an `if <opt>:` that loads a checkpoint and restores the model's and an optimizer's state.

    A block that restores the optimizer alone is no resume (the model starts fresh, and the
    file is no full checkpoint): it stays where it is, and the optimizer it fills is the
    one configure_optimizers returns."""
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
        restored = [
            dotted(method_call(n)[0]) or ""
            for n in walk(st)
            if isinstance(n, cst.Call) and method_call(n) and method_call(n)[1] == "load_state_dict"
        ]
        restores_opt = any(t.rsplit(".", 1)[-1] in ix.optim_targets for t in restored)
        if loads and restores_opt and any(_is_model(t, ix) for t in restored):
            return st, loads[0]
    return None


def _is_model(target: str, ix) -> bool:
    """Whether `target.load_state_dict(...)` restores a model the optimizers train."""
    last = target.rsplit(".", 1)[-1]
    if last in ix.optim_targets or last in ix.sched_targets:
        return False
    if not ix.optimized_models:  # `Adam(params)`: any other module counts
        return bool(target)
    return any(target == m or target.startswith(m + ".") for m in ix.optimized_models)


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
