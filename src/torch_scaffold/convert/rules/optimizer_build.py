"""The optimizer built in configure_optimizers, where that is faithful; else left where it was.

`opt = torch.optim.SGD(model.parameters(), lr=0.1)` before the loop ->
`return torch.optim.SGD(self.model.parameters(), lr=0.1)` in configure_optimizers, the
assignment gone from the script. Lightning calls configure_optimizers once, at the start of
fit, and an optimizer's state is empty until its first step: building it there trains the
same, when (all of, checked conservatively):

- one optimizer, automatic optimization, no closure, no scheduler built on it;
- it is bound once, by a plain `NAME = <torch.optim class>(...)` at the top level of the
  scope that runs the loop, before the loop;
- nothing but the zero_grad()/step() calls the conversion removes uses NAME;
- its arguments read only the model that becomes `self.<model>` (through .parameters() /
  .named_parameters(), attribute chains, comprehensions over them), literals, a few builtins
  and, when the loop runs at module level, module-level names bound once before it and not
  touched again before the loop;
- neither the model nor those names are rebound between the optimizer and the loop (the
  parameters it gets must be the very ones the loop trained).

Otherwise plan.optimizer_kept says why, in a few words, for the report.
"""

from __future__ import annotations

import re

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, contains, dotted, walk
from torch_scaffold.convert.plan import HOST
from torch_scaffold.convert.scope import _Scopes, param_names, rename, statement_usage

_PARAM_METHODS = ("parameters", "named_parameters")
# builtins an argument may call (pure, when the script does not rebind them)
_BUILTINS = {"list", "tuple", "dict", "set", "float", "int", "len", "any", "all", "sorted"}
_LITERALS = (
    cst.Integer,
    cst.Float,
    cst.Imaginary,
    cst.SimpleString,
    cst.ConcatenatedString,
)


_MARKERS = ("# %% [scaffold convert", "# scaffold convert:")  # notebook.py's marker lines


class _NotFaithful(Exception):
    pass


def run(ctx) -> None:
    plan = ctx.plan
    try:
        stmt_line, call, model, attr = _check(ctx)
    except _NotFaithful as why:
        plan.optimizer_kept = str(why)
        return
    body = rename(call, {model: cst.parse_expression(f"self.{attr}")}) if model else call
    plan.built_optimizer = code(body)
    plan.built_optimizer_stmt = stmt_line
    # its comments describe it: they go with it, above the return in configure_optimizers
    # (not the converter's own markers: a notebook's cell boundaries stay where they are)
    comments = [
        ln.comment.value
        for ln in stmt_line.leading_lines
        if ln.comment is not None and not ln.comment.value.startswith(_MARKERS)
    ]
    trailing = stmt_line.trailing_whitespace.comment
    plan.built_optimizer_comments = comments + ([trailing.value] if trailing else [])
    plan.drop_stmts.append(stmt_line)


def _check(ctx):
    plan, loop, parsed = ctx.plan, ctx.loop, ctx.parsed
    roles = plan.roles
    if len(roles.optimizers) != 1:
        raise _NotFaithful(f"{len(roles.optimizers)} optimizers (manual optimization)")
    if plan.manual:
        raise _NotFaithful("it is stepped by hand (manual optimization)")
    if loop.kind == "closure" or loop.closure_fn is not None:
        raise _NotFaithful("it steps with a closure")
    name = roles.optimizers[0]
    if "." in name:
        raise _NotFaithful(f"it is an attribute (`{name.replace(HOST, 'self')}`)")
    if plan.schedulers or ctx.ix.sched_targets:
        raise _NotFaithful("a scheduler is built on it")
    driver, replaced = loop.driver, ctx.raw.replaced
    where = "module level" if isinstance(driver, cst.Module) else f"{driver.name.value}()"
    top = body_of(driver)
    loop_at = next((i for i, s in enumerate(top) if s is replaced or contains(s, replaced)), None)
    if loop_at is None:
        raise _NotFaithful("the loop is not at the top level of its scope")
    found = [
        (i, s)
        for i, s in enumerate(top[:loop_at])
        if isinstance(s, cst.SimpleStatementLine)
        and len(s.body) == 1
        and isinstance(s.body[0], cst.Assign)
        and len(s.body[0].targets) == 1
        and isinstance(s.body[0].targets[0].target, cst.Name)
        and s.body[0].targets[0].target.value == name
    ]
    if len(found) != 1:
        raise _NotFaithful(f"it is not bound by one plain assignment before the loop at {where}")
    at, stmt_line = found[0]
    assign = stmt_line.body[0]
    call = assign.value
    qname = parsed.qname(call.func) if isinstance(call, cst.Call) else None
    if not qname or not qname.startswith("torch.optim.") or "lr_scheduler" in qname:
        raise _NotFaithful("it is not built by a torch.optim class call")
    if qname.rsplit(".", 1)[-1] == "LBFGS":
        raise _NotFaithful("LBFGS steps with a closure")
    _only_stepped(ctx, name, assign.targets[0].target)
    head = (dotted(call.func) or "").split(".")[0]
    if head not in parsed.aliases or head in _bound_in(driver):
        raise _NotFaithful(f"`{head}` is not a module-level import")
    model, attr = _arguments(ctx, call, driver, where, top, at, loop_at)
    return stmt_line, call, model, attr


def _bound_in(driver) -> set[str]:
    """Names a function driver binds (its parameters and locals); nothing for the module."""
    if isinstance(driver, cst.Module):
        return set()
    return param_names(driver.params) | statement_usage(body_of(driver)).binds


def _only_stepped(ctx, name: str, target: cst.Name) -> None:
    """Every use of `name` is one the conversion removes: zero_grad()/step() in the moved code."""
    parsed = ctx.parsed
    moved = [ctx.raw.replaced, *ctx.raw.inlined]
    for inline in (ctx.loop.step_inline, ctx.loop.epoch_inline):
        if inline is not None:
            moved.append(inline.fn)
    inside: list[cst.Name] = []
    for node in parsed.of_type(cst.Name):
        if node is target or node.value != name or _not_a_variable(parsed, node):
            continue
        if not any(contains(m, node) for m in moved):
            raise _NotFaithful(f"it is also used at line {ctx.lineof(node)}")
        inside.append(node)
    # what the passes left of it in the hooks and around the Trainer call
    plan = ctx.plan
    left = name in plan.name_map or any(
        name in _words(text)
        for text in [
            *plan.ctor.values(),
            *plan.writebacks,
            *plan.post_fit,
            *plan.fit_kwargs.values(),
            *plan.trainer_flags.values(),
            *plan.callbacks,
        ]
    )
    if left:
        # an inlined function's parameter bound to it is the same optimizer
        for inline in (ctx.loop.step_inline, ctx.loop.epoch_inline):
            if inline is None:
                continue
            for param, value in inline.bindings.items():
                if isinstance(value, cst.Name) and value.value == name:
                    inside += [
                        n
                        for n in parsed.of_type(cst.Name, within=inline.fn)
                        if n.value == param and not _not_a_variable(parsed, n)
                    ]
        calls = [i.call for i in (ctx.loop.step_inline, ctx.loop.epoch_inline) if i is not None]
        inside.sort(key=lambda n: ctx.lineof(n) or 0)
        line = next(
            (
                ctx.lineof(n)
                for n in inside
                if not _removed_call(parsed, n)
                and not isinstance(parsed.parent(n), cst.Param)
                and not any(contains(c, n) for c in calls)
            ),
            None,
        )
        if line is None:
            line = ctx.lineof(inside[0]) if inside else None
        raise _NotFaithful(f"it is also used at line {line}")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def _not_a_variable(parsed, node: cst.Name) -> bool:
    parent = parsed.parent(node)
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return True
    return isinstance(parent, cst.Arg) and parent.keyword is node


def _removed_call(parsed, node: cst.Name) -> bool:
    """`NAME.zero_grad(...)`, `NAME.step()`, `scaler.step(NAME)`: what the conversion removes."""
    parent = parsed.parent(node)
    if isinstance(parent, cst.Attribute) and parent.value is node:
        return parent.attr.value in ("zero_grad", "step") and isinstance(
            parsed.parent(parent), cst.Call
        )
    if isinstance(parent, cst.Arg):
        call = parsed.parent(parent)
        return isinstance(call, cst.Call) and (dotted(call.func) or "").endswith(".step")
    return False


def _arguments(ctx, call: cst.Call, driver, where: str, top, at: int, loop_at: int):
    """(the model variable, its attribute) when the arguments read only what is allowed."""
    parsed, plan = ctx.parsed, ctx.plan
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
        if d is not None and d.split(".")[0] in comp_vars and "." in d:
            return  # `p.dim()`, `n.endswith("bias")` on a comprehension's own variable
        problem.append(f"its arguments call `{code(func)}`")

    for arg in call.args:
        arg.value.visit(Visitor())
        if arg.star:
            problem.append("its arguments are unpacked")
    if problem:
        raise _NotFaithful(problem[0])
    for n in walk(call):
        if isinstance(n, cst.Name) and n.value in model_names and n.value in reads:
            parent = parsed.parent(n)
            if not (isinstance(parent, cst.Attribute) and parent.value is n):
                raise _NotFaithful(f"its arguments use `{n.value}` itself, not its parameters")
    module_binds = _module_binds(ctx)
    model, attr = None, None
    for name in sorted(reads):
        node = reads[name]
        if name in model_names:
            mapped = plan.name_map.get(name)
            target = code(mapped) if mapped is not None else ""
            a = target[len("self.") :] if target.startswith("self.") else None
            if a is None or plan.ctor.get(a) != name or model is not None:
                raise _NotFaithful(f"`{name}` is not the model the LightningModule holds")
            model, attr = name, a
            continue
        if name in ("True", "False", "None") or (name in _BUILTINS and not module_binds.get(name)):
            continue
        if not module_driver:
            if name in _bound_in(driver):
                raise _NotFaithful(f"its arguments use names local to {where}")
            raise _NotFaithful(f"its arguments use `{name}`, a global read from {where}")
        if module_binds.get(name, 0) != 1:
            raise _NotFaithful(f"its arguments use `{name}`, bound more than once")
        bound_at = [i for i, s in enumerate(top) if name in statement_usage([s]).binds]
        if not bound_at or bound_at[0] >= at:
            raise _NotFaithful(f"its arguments use `{name}`, not bound before it")
        for s in top[at + 1 : loop_at]:
            if any(isinstance(x, cst.Name) and x.value == name for x in walk(s)):
                raise _NotFaithful(
                    f"its arguments use `{name}`, which line {ctx.lineof(s)} touches again"
                )
    # the parameters it gets must be the very ones the loop trains
    watched = set(model_names) | set(reads)
    if any(isinstance(n, cst.CompIf) for n in walk(call)):
        # a filter (`if p.requires_grad`) reads the parameters' state when it runs: nothing
        # between may touch the model (freezing a layer would change what it picks)
        for s in top[at + 1 : loop_at]:
            if any(isinstance(x, cst.Name) and x.value in model_names for x in walk(s)):
                raise _NotFaithful(
                    f"its arguments filter the parameters and line {ctx.lineof(s)} touches"
                    " the model before the loop"
                )
    for s in top[at + 1 : loop_at]:
        rebound = watched & statement_usage([s]).binds
        if rebound:
            what = "the model" if rebound & model_names else f"`{min(rebound)}`"
            raise _NotFaithful(f"{what} is rebound at line {ctx.lineof(s)}, after it")
    # the statement that holds the loop (`if __name__ == "__main__":`, `with ...:`), the loop
    # included: nothing in it may rebind them either
    inner = watched & statement_usage([top[loop_at]]).binds
    if inner:
        what = "the model" if inner & model_names else f"`{min(inner)}`"
        raise _NotFaithful(
            f"{what} is rebound in the block of the loop (line {ctx.lineof(top[loop_at])})"
        )
    return model, attr


def _module_binds(ctx) -> dict[str, int]:
    """How many statements anywhere in the module bind each name at module level (a
    `global` declaration counts as one more: the function may rebind it)."""
    counts: dict[str, int] = {}
    for s in ctx.parsed.module.body:
        for n in statement_usage([s]).binds:
            counts[n] = counts.get(n, 0) + 1
    for g in ctx.parsed.of_type(cst.Global):
        for item in g.names:
            counts[item.name.value] = counts.get(item.name.value, 0) + 1
    return counts
