"""Metrics the script computes at the end of an epoch -> self.log / self.log_dict.

The user's prints stay; values returned by an evaluation function become logged
metrics too, so loggers, callbacks and the progress bar can see them.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import body_of, dotted, stmt, walk
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


# calls whose result is a Python number whatever their argument
_NUMBER_CALLS = {"float", "int", "len", "round", "abs", "math.sqrt", "math.exp", "math.log"}


def _is_scalar(e, scalars: frozenset[str] = frozenset()) -> bool:
    """Provably a number: self.log takes nothing else (an image batch raises there)."""
    if isinstance(e, (cst.Float, cst.Integer)):
        return True
    if isinstance(e, cst.Name):
        return e.value in scalars
    if isinstance(e, cst.UnaryOperation):
        return _is_scalar(e.expression, scalars)
    if isinstance(e, cst.BinaryOperation):
        return _is_scalar(e.left, scalars) and _is_scalar(e.right, scalars)
    if isinstance(e, cst.Call):
        if isinstance(e.func, cst.Attribute) and e.func.attr.value == "item" and not e.args:
            return True
        if dotted(e.func) in ("round", "abs") and e.args:
            return _is_scalar(e.args[0].value, scalars)
        return dotted(e.func) in _NUMBER_CALLS
    return False


def _pairs(target, value) -> list:
    """(name, value) of an assignment; `a, b = 0.0, 0` pairs up, other unpacking is unknown."""
    if isinstance(target, cst.Name):
        return [(target, value)]
    if (
        isinstance(target, (cst.Tuple, cst.List))
        and isinstance(value, (cst.Tuple, cst.List))
        and len(target.elements) == len(value.elements)
        and not any(isinstance(e, cst.StarredElement) for e in (*target.elements, *value.elements))
    ):
        return [
            p for t, v in zip(target.elements, value.elements) for p in _pairs(t.value, v.value)
        ]
    return [(m, None) for m in walk(target) if isinstance(m, cst.Name)]


def _scalar_names(fn: cst.FunctionDef) -> frozenset[str]:
    """Names of `fn` that every binding in it makes a number (`total += loss.item()`)."""
    bindings: dict[str, list] = {}
    for n in walk(fn):
        if isinstance(n, cst.Assign):
            for t in n.targets:
                for m, value in _pairs(t.target, n.value):
                    bindings.setdefault(m.value, []).append(value)
        elif isinstance(n, (cst.AugAssign, cst.AnnAssign)) and isinstance(n.target, cst.Name):
            bindings.setdefault(n.target.value, []).append(n.value)
        else:
            # loop variables, parameters, `as` names, walrus: values not known
            bound = {
                cst.For: "target",
                cst.CompFor: "target",
                cst.Param: "name",
                cst.AsName: "name",
                cst.NamedExpr: "target",
            }.get(type(n))
            for m in walk(getattr(n, bound)) if bound else ():
                if isinstance(m, cst.Name):
                    bindings.setdefault(m.value, []).append(None)
    # the largest set of names whose every binding is a number given the others are
    known = set(bindings)
    changed = True
    while changed:
        changed = False
        for name in list(known):
            if not all(v is not None and _is_scalar(v, frozenset(known)) for v in bindings[name]):
                known.discard(name)
                changed = True
    return frozenset(known)


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
            elif _is_scalar(value, _scalar_names(fn)):
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
