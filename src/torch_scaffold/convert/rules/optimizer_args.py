"""What the optimizer's and scheduler's arguments may read when rules/optimizer_build.py
builds them in configure_optimizers: checks that raise NotFaithful with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, dotted, walk
from torch_scaffold.convert.scope import _Scopes, bound_names, expr_reads, param_names

if TYPE_CHECKING:
    from torch_scaffold.convert.rules.optimizer_build import _Built


class NotFaithful(Exception):
    """Building it in configure_optimizers could train differently; the text says why."""


_PARAM_METHODS = ("parameters", "named_parameters")
# builtins an argument may call (pure, when the script does not rebind them)
_BUILTINS = {"list", "tuple", "dict", "set", "float", "int", "len", "any", "all", "sorted"}


def bound_in(driver) -> set[str]:
    """Names a function driver binds (its parameters and locals); nothing for the module."""
    if isinstance(driver, cst.Module):
        return set()
    return param_names(driver.params) | bound_names(body_of(driver))


def arguments(ctx, one: _Built, driver, where: str, top, loop_at: int, built, own: set[str]):
    """({model: self.<attr>}, {driver-local names to hold}) when `one`'s arguments read only
    what is allowed. `own`: names bound by what moves along (the optimizer, for its
    scheduler); `built`: the statements that move (not a change between them and the loop)."""
    parsed, plan = ctx.parsed, ctx.plan
    call, at = one.call, one.at
    module_driver = isinstance(driver, cst.Module)
    scopes = _Scopes()
    reads: dict[str, cst.Name] = {}
    model_names: set[str] = set()
    problem: list[str] = []

    class Visitor(cst.CSTVisitor):
        def on_visit(self, node):
            scopes.enter(node)
            if isinstance(node, (cst.Lambda, cst.NamedExpr, cst.Await, cst.Yield)):
                problem.append(f"its arguments hold `{code(node)[:30]}`")
                return False
            if isinstance(node, cst.Call):
                _call_ok(node)
            if isinstance(node, cst.Name) and scopes.free(node):
                reads.setdefault(node.value, node)
            return True

        def on_leave(self, node):
            scopes.leave(node)

    comp_vars: set[str] = set()
    for node in walk(call):
        if isinstance(node, cst.CompFor):
            comp_vars |= {n.value for n in walk(node.target) if isinstance(n, cst.Name)}

    def _call_ok(node: cst.Call) -> None:
        func = node.func
        d = dotted(func)
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in _PARAM_METHODS
            and d is not None
            and not node.args
        ):
            model_names.add(d.split(".")[0])
            return
        if isinstance(func, cst.Name) and func.value in _BUILTINS:
            return
        if isinstance(func, cst.Name) and _pure_function(ctx, func.value):
            return  # `lr_lambda=warmup_then_decay(args.warmup, args.steps)`
        if d is not None and d.split(".")[0] in comp_vars and "." in d:
            return  # `p.dim()`, `n.endswith("bias")` on a comprehension's own variable
        problem.append(f"its arguments call `{code(func)}`")

    for arg in call.args:
        arg.value.visit(Visitor())
        if arg.star:
            problem.append("its arguments are unpacked")
    if problem:
        raise NotFaithful(problem[0])
    for n in walk(call):
        if isinstance(n, cst.Name) and n.value in model_names and n.value in reads:
            parent = parsed.parent(n)
            if not (isinstance(parent, cst.Attribute) and parent.value is n):
                raise NotFaithful(f"its arguments use `{n.value}` itself, not its parameters")
    moving = {id(b.line) for b in built}
    between = [s for s in top[at + 1 : loop_at] if id(s) not in moving]
    module_binds = _module_binds(ctx)
    mapping: dict[str, cst.BaseExpression] = {}
    held: set[str] = set()
    for name in sorted(set(reads) - own):
        node = reads[name]
        if name in model_names:
            mapped = plan.name_map.get(name)
            target = code(mapped) if mapped is not None else ""
            a = target[len("self.") :] if target.startswith("self.") else None
            if a is None or plan.ctor.get(a) != name or mapping:
                raise NotFaithful(f"`{name}` is not the model the LightningModule holds")
            mapping[name] = mapped
            continue
        if name in ("True", "False", "None") or (name in _BUILTINS and not module_binds.get(name)):
            continue
        if not module_driver:
            if name in bound_in(driver):
                _check_local(ctx, name, driver, top, at, between)
                held.add(name)
                continue
            if module_binds.get(name, 0) == 1 and _bound_before_the_driver(ctx, name):
                if any(_may_change(s, name) for s in between):
                    raise NotFaithful(
                        f"its arguments use `{name}`, which {where} may change before the loop"
                    )
                continue  # the class reads the very same object when fit starts
            raise NotFaithful(f"its arguments use `{name}`, a global read from {where}")
        if module_binds.get(name, 0) != 1:
            raise NotFaithful(f"its arguments use `{name}`, bound more than once")
        bound_at = [i for i, s in enumerate(top) if name in bound_names([s])]
        if not bound_at or bound_at[0] >= at:
            raise NotFaithful(f"its arguments use `{name}`, not bound before it")
        for s in between:
            if any(isinstance(x, cst.Name) and x.value == name for x in walk(s)):
                raise NotFaithful(
                    f"its arguments use `{name}`, which line {ctx.lineof(s)} touches again"
                )
    # the parameters it gets must be the very ones the loop trains
    watched = (set(model_names) | set(reads)) - own
    if any(isinstance(n, cst.CompIf) for n in walk(call)):
        # a filter (`if p.requires_grad`) reads the parameters' state when it runs: nothing
        # between may touch the model (freezing a layer would change what it picks)
        for s in between:
            if any(isinstance(x, cst.Name) and x.value in model_names for x in walk(s)):
                raise NotFaithful(
                    f"its arguments filter the parameters and line {ctx.lineof(s)} touches"
                    " the model before the loop"
                )
    for s in between:
        rebound = watched & bound_names([s])
        if rebound:
            what = "the model" if rebound & model_names else f"`{min(rebound)}`"
            raise NotFaithful(f"{what} is rebound at line {ctx.lineof(s)}, after it")
    # the statement that holds the loop (`if __name__ == "__main__":`, `with ...:`), the loop
    # included: nothing in it may rebind them either
    inner = watched & bound_names([top[loop_at]])
    if inner:
        what = "the model" if inner & model_names else f"`{min(inner)}`"
        raise NotFaithful(
            f"{what} is rebound in the block of the loop (line {ctx.lineof(top[loop_at])})"
        )
    return mapping, held


def _check_local(ctx, name: str, driver, top, at: int, between) -> None:
    """A local of the loop's function that the LightningModule can hold and read at fit: bound
    once (a parameter, or one statement before `at`), and nothing between may change it."""
    binding = [i for i, s in enumerate(top) if name in bound_names([s])]
    is_param = name in param_names(driver.params)
    if len(binding) + is_param != 1 or (binding and binding[0] >= at):
        raise NotFaithful(f"its arguments use `{name}`, bound more than once in the function")
    for s in between:
        if _may_change(s, name):
            raise NotFaithful(f"its arguments use `{name}`, which line {ctx.lineof(s)} may change")


def _may_change(st, name: str) -> bool:
    """Whether `st` may rebind or mutate `name`: assigns to it or through it (`args.lr = ..`),
    passes it whole to a call, or calls a method on it (conservative)."""
    if name in bound_names([st]):
        return True
    for node in walk(st):
        if any(_root(t) == name for t in assignment_targets(node)):
            return True
        if isinstance(node, cst.Call):
            if isinstance(node.func, cst.Attribute) and _root(node.func.value) == name:
                return True
            if any(isinstance(a.value, cst.Name) and a.value.value == name for a in node.args):
                return True
    return False


def assignment_targets(node) -> list[cst.BaseExpression]:
    """What an assignment, augmented or annotated assignment, or `del` writes; [] otherwise."""
    if isinstance(node, cst.Assign):
        return [t.target for t in node.targets]
    if isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.Del)):
        return [node.target]
    return []


def _root(expr) -> str | None:
    """`a` of `a.b[c].d`; None for anything else."""
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return expr.value if isinstance(expr, cst.Name) else None


def _bound_before_the_driver(ctx, name: str) -> bool:
    """Bound at module level by an import, a def or a class, or by a statement above the
    loop's function: bound by the time the function can run."""
    anchor = ctx.facts.anchor
    before = True
    for st in ctx.parsed.module.body:
        if st is anchor:
            before = False
        if isinstance(st, (cst.FunctionDef, cst.ClassDef)) and st.name.value == name:
            return True
        imports = isinstance(st, cst.SimpleStatementLine) and any(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in st.body
        )
        if (imports or before) and name in bound_names([st]):
            return True
    return False


# what a pure function may call: arithmetic on numbers, nothing that draws random numbers,
# reads the clock, prints or touches state
_PURE_CALLS = {"min", "max", "abs", "float", "int", "round", "len", "range", "sum", "pow"}


def _pure_function(ctx, name: str) -> bool:
    """Whether `name` is a function defined once at module level whose call does nothing but
    compute a value (it may define and return a function that does the same): calling it
    when fit starts instead of before the loop gives the same result and draws nothing."""
    defs = [
        st
        for st in ctx.parsed.module.body
        if isinstance(st, cst.FunctionDef) and st.name.value == name
    ]
    if len(defs) != 1 or _module_binds(ctx).get(name) != 1 or defs[0].decorators:
        return False
    math = {alias for alias, target in ctx.parsed.aliases.items() if target == "math"}
    # it reads nothing from outside but its arguments (a global could change meanwhile)
    if set(expr_reads(defs[0])) - _PURE_CALLS - math - {"True", "False", "None"}:
        return False
    for node in walk(defs[0].body):
        if isinstance(node, (cst.Global, cst.Nonlocal, cst.Import, cst.ImportFrom, cst.Del)):
            return False
        if isinstance(node, (cst.Yield, cst.Await, cst.With, cst.Raise, cst.Try)):
            return False
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            targets = node.targets if isinstance(node, cst.Assign) else [node]
            if not all(isinstance(t.target, cst.Name) for t in targets):
                return False  # writes through an attribute or an index
        if isinstance(node, cst.Call):
            func = node.func
            called = dotted(func) or ""
            local = isinstance(func, cst.Name) and any(
                isinstance(n, cst.FunctionDef) and n.name.value == func.value
                for n in walk(defs[0].body)
            )
            if not (
                local
                or (isinstance(func, cst.Name) and func.value in _PURE_CALLS)
                or (called.count(".") == 1 and called.split(".")[0] in math)
            ):
                return False
    return True


def _module_binds(ctx) -> dict[str, int]:
    """How many statements anywhere in the module bind each name at module level (a
    `global` declaration counts as one more: the function may rebind it)."""
    counts: dict[str, int] = {}
    for s in ctx.parsed.module.body:
        for n in bound_names([s]):
            counts[n] = counts.get(n, 0) + 1
    for g in ctx.parsed.of_type(cst.Global):
        for item in g.names:
            counts[item.name.value] = counts.get(item.name.value, 0) + 1
    return counts
