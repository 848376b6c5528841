"""Metrics the script computes at the end of an epoch -> self.log / self.log_dict.

The user's prints stay; values returned by an evaluation function become logged
metrics too, so loggers, callbacks and the progress bar can see them.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, dotted, stmt
from torch_scaffold.convert.plan import HOST
from torch_scaffold.convert.result import MOVED


def _final_return(fn: cst.FunctionDef):
    body = body_of(fn)
    if (
        body
        and isinstance(body[-1], cst.SimpleStatementLine)
        and isinstance(body[-1].body[0], cst.Return)
    ):
        return body[-1].body[0].value
    return None


def _is_mapping(e) -> bool:
    return isinstance(e, (cst.Dict, cst.DictComp))


def _is_scalar(e) -> bool:
    return isinstance(
        e, (cst.BinaryOperation, cst.Name, cst.Float, cst.Integer, cst.Subscript)
    ) or (
        isinstance(e, cst.Call)
        and isinstance(e.func, cst.Attribute)
        and e.func.attr.value == "item"
    )


def _eval_function(ctx, call: cst.Call):
    name = dotted(call.func) or ""
    if name.startswith(HOST + "."):
        name = name.split(".", 1)[1]
    if "." in name:
        return None
    fns = ctx.ix.functions.get(name, [])
    return fns[0] if len(fns) == 1 else None


def epoch_metrics(ctx, stmts: list, logged: set[str]) -> list:
    out = []
    for st in stmts:
        out.append(st)
        if not (
            isinstance(st, cst.SimpleStatementLine)
            and len(st.body) == 1
            and isinstance(st.body[0], cst.Assign)
        ):
            continue
        a = st.body[0]
        if not isinstance(a.value, cst.Call) or len(a.targets) != 1:
            continue
        fn = _eval_function(ctx, a.value)
        ret = _final_return(fn) if fn is not None else None
        if ret is None:
            continue
        target = a.targets[0].target
        pairs = []
        if isinstance(target, cst.Name):
            pairs = [(target.value, ret)]
        elif (
            isinstance(target, cst.Tuple)
            and isinstance(ret, cst.Tuple)
            and len(target.elements) == len(ret.elements)
        ):
            pairs = [
                (t.value.value, r.value)
                for t, r in zip(target.elements, ret.elements)
                if isinstance(t.value, cst.Name)
            ]
        for name, value in pairs:
            if name in logged:
                continue
            if _is_mapping(value):
                out.append(
                    stmt(f'self.log_dict({{f"{name}_{{k}}": v for k, v in {name}.items()}})')
                )
            elif _is_scalar(value):
                out.append(stmt(f'self.log("{name}", {name})'))
            else:
                continue
            logged.add(name)
            ctx.note(MOVED, f"`{name}` from {fn.name.value}() -> self.log", st)
    return out


def run(ctx) -> None:
    from torch_scaffold.convert.plan import EPOCH_END

    monitors = {s.monitor for s in ctx.plan.schedulers if s.monitor}
    ctx.plan.sections[EPOCH_END] = epoch_metrics(ctx, ctx.plan.sections[EPOCH_END], monitors)
