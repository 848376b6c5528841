"""The optimizer (and its scheduler) built in configure_optimizers, where that is faithful;
else left where it was.

`opt = torch.optim.SGD(model.parameters(), lr=args.lr)` before the loop ->
`opt = torch.optim.SGD(self.model.parameters(), lr=self.args.lr)` in configure_optimizers, the
assignment gone from the script; a scheduler built on it right after goes along. Lightning
calls configure_optimizers once, at the start of fit, and an optimizer's state is empty until
its first step: building them there trains the same, when (all of, checked conservatively):

- one optimizer, automatic optimization, no closure; at most one scheduler, built on it;
- each is bound once, by a plain `NAME = <torch.optim class>(...)` at the top level of the
  scope that runs the loop, before the loop (the scheduler after the optimizer);
- nothing but the calls the conversion removes (zero_grad(), step()) uses NAME, and nothing
  but the scheduler uses the optimizer;
- their arguments read only the model that becomes `self.<model>` (through .parameters() /
  .named_parameters(), attribute chains, comprehensions over them), literals, a few
  builtins, module-level names bound once (for a loop at module level: before them, and not
  touched again before the loop; for a loop in a function: imports, functions, or names bound
  above the function, that nothing before the loop may change), calls of module-level
  functions that only compute (_pure_function), and names local to the loop's
  function that are bound once before them and that nothing between them and the loop may
  change (`args`): the LightningModule holds those, as `self.<name>`, and reads them when
  fit starts;
- neither the model nor those names are rebound between them and the loop (the parameters
  it gets must be the very ones the loop trained).

Otherwise plan.optimizer_kept says why, in a few words, for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import libcst as cst

from torch_scaffold.convert.nodes import body_of, code, contains, dotted, walk
from torch_scaffold.convert.plan import HOST
from torch_scaffold.convert.scope import (
    _Scopes,
    bound_names,
    expr_reads,
    param_names,
    rename,
)
from torch_scaffold.convert.state import attr_name

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
        optimizer, scheduler, mapping, held, accessors = _check(ctx)
    except _NotFaithful as why:
        plan.optimizer_kept = str(why)
        return
    for attr, accessor in accessors.items():  # built in the hook: no longer held
        del plan.ctor[attr]
        for hook, stmts in plan.sections.items():
            plan.sections[hook] = [st.visit(_Accessor(attr, accessor)) for st in stmts]
    plan.built_accessors = sorted(accessors.values())
    for name in held:  # names the LightningModule must hold from now on
        mapping[name] = cst.parse_expression(f"self.{_hold(plan, name)}")
    plan.built_optimizer = code(rename(optimizer.call, mapping))
    plan.built_optimizer_stmt = optimizer.line
    plan.built_optimizer_comments = _comments(optimizer.line)
    plan.drop_stmts.append(optimizer.line)
    if scheduler is not None:
        plan.built_optimizer_name = optimizer.name
        plan.built_scheduler = code(rename(scheduler.call, mapping))
        plan.built_scheduler_stmt = scheduler.line
        plan.built_scheduler_comments = _comments(scheduler.line)
        plan.drop_stmts.append(scheduler.line)


@dataclass(frozen=True)
class _Built:
    line: cst.SimpleStatementLine  # the script's `NAME = <call>`, removed from it
    name: str
    call: cst.Call
    at: int  # its index in the driver's top-level statements
    held: str | None = None  # the attribute the hooks read it through


def _comments(line: cst.SimpleStatementLine) -> list[str]:
    """Its comments describe it: they go with it, above it in configure_optimizers (not the
    converter's own markers: a notebook's cell boundaries stay where they are)."""
    comments = [
        ln.comment.value
        for ln in line.leading_lines
        if ln.comment is not None and not ln.comment.value.startswith(_MARKERS)
    ]
    trailing = line.trailing_whitespace.comment
    return comments + ([trailing.value] if trailing else [])


def _hold(plan, name: str) -> str:
    """The attribute through which the LightningModule holds the driver's `name` (a new
    constructor argument when it holds it not yet)."""
    node = plan.name_map.get(name)
    if node is not None and code(node).startswith("self."):
        return code(node)[len("self.") :]
    held = next((attr for attr, expr in plan.ctor.items() if expr == name), None)
    if held is not None:
        return held
    attr = attr_name(name)
    while attr in plan.ctor or attr in plan.state_init_none:
        attr += "_"
    plan.ctor[attr] = name
    return attr


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
    driver, replaced = loop.driver, ctx.raw.replaced
    where = "module level" if isinstance(driver, cst.Module) else f"{driver.name.value}()"
    top = body_of(driver)
    loop_at = next((i for i, s in enumerate(top) if s is replaced or contains(s, replaced)), None)
    if loop_at is None:
        raise _NotFaithful("the loop is not at the top level of its scope")
    optimizer = _assignment(ctx, top[:loop_at], name, where, "it")
    qname = parsed.qname(optimizer.call.func)
    if not qname or not qname.startswith("torch.optim.") or "lr_scheduler" in qname:
        raise _NotFaithful("it is not built by a torch.optim class call")
    if qname.rsplit(".", 1)[-1] == "LBFGS":
        raise _NotFaithful("LBFGS steps with a closure")
    scheduler = _scheduler(ctx, top, optimizer, loop_at, where)
    built = [optimizer] + ([scheduler] if scheduler else [])
    accessors = {}  # attribute the hooks read it through -> what reads it once it is built
    held_opt = _only_stepped(ctx, name, optimizer.line, scheduler.line if scheduler else None)
    if held_opt is not None:
        accessors[held_opt] = "self.optimizers()"
    if scheduler is not None and scheduler.held is not None:
        accessors[scheduler.held] = "self.lr_schedulers()"
    mapping: dict[str, cst.BaseExpression] = {}
    held: set[str] = set()
    for one in built:
        head = (dotted(one.call.func) or "").split(".")[0]
        if head not in parsed.aliases or head in _bound_in(driver):
            raise _NotFaithful(f"`{head}` is not a module-level import")
        own = {optimizer.name} if one is scheduler else set()
        found, needs = _arguments(ctx, one, driver, where, top, loop_at, built, own)
        if one is scheduler and found:
            raise _NotFaithful("the scheduler's arguments use the model")
        mapping.update(found)
        held |= needs
    return optimizer, scheduler, mapping, held, accessors


def _assignment(ctx, stmts, name: str, where: str, what: str) -> _Built:
    """The one plain `name = <call>(...)` among the driver's top-level `stmts`."""
    found = [
        (i, s)
        for i, s in enumerate(stmts)
        if isinstance(s, cst.SimpleStatementLine)
        and len(s.body) == 1
        and isinstance(s.body[0], cst.Assign)
        and len(s.body[0].targets) == 1
        and isinstance(s.body[0].targets[0].target, cst.Name)
        and s.body[0].targets[0].target.value == name
    ]
    if len(found) != 1:
        raise _NotFaithful(
            f"{what} is not bound by one plain assignment before the loop at {where}"
        )
    at, line = found[0]
    call = line.body[0].value
    if not isinstance(call, cst.Call):
        raise _NotFaithful(f"{what} is not built by a torch.optim class call")
    return _Built(line, name, call, at)


def _scheduler(ctx, top, optimizer: _Built, loop_at: int, where: str) -> _Built | None:
    """The scheduler built on the optimizer between it and the loop, when it can go along."""
    plan, ix = ctx.plan, ctx.ix
    if not plan.schedulers and not ix.sched_targets:
        return None
    if len(plan.schedulers) != 1 or len(ix.sched_targets) != 1:
        raise _NotFaithful("a scheduler is built on it")
    name = plan.schedulers[0].expr
    if "." in name:
        raise _NotFaithful(f"its scheduler is an attribute (`{name.replace(HOST, 'self')}`)")
    scheduler = _assignment(ctx, top[:loop_at], name, where, "its scheduler")
    qname = ctx.parsed.qname(scheduler.call.func) or ""
    if not qname.startswith("torch.optim.lr_scheduler."):
        raise _NotFaithful("its scheduler is not built by a torch.optim.lr_scheduler class call")
    if scheduler.at < optimizer.at:
        raise _NotFaithful("its scheduler is bound before it")
    first = scheduler.call.args[0] if scheduler.call.args else None
    positional_or_named = first is not None and (
        first.keyword is None or first.keyword.value == "optimizer"
    )
    on_it = (
        positional_or_named
        and isinstance(first.value, cst.Name)
        and first.value.value == optimizer.name
    )
    if not on_it:
        raise _NotFaithful("its scheduler is not built on it by name")
    held = _only_stepped(ctx, name, scheduler.line, what="its scheduler")
    return replace(scheduler, held=held)


def _bound_in(driver) -> set[str]:
    """Names a function driver binds (its parameters and locals); nothing for the module."""
    if isinstance(driver, cst.Module):
        return set()
    return param_names(driver.params) | bound_names(body_of(driver))


def _only_stepped(ctx, name: str, line, allowed=None, what: str = "it") -> str | None:
    """Every use of `name` is one the conversion removes: zero_grad()/step() in the moved code
    (or one in `allowed`: the scheduler built on the optimizer, which moves along), or one the
    hooks make through the attribute that holds it. Returns that attribute, or None."""
    parsed = ctx.parsed
    target = line.body[0].targets[0].target
    # the loop, the functions inlined into it, and the resume block (Lightning restores the
    # state it loaded into whatever configure_optimizers returns)
    moved = [ctx.raw.replaced, *ctx.raw.inlined, *ctx.plan.removed_functions]
    moved += [allowed] if allowed is not None else []
    for inline in (ctx.loop.step_inline, ctx.loop.epoch_inline):
        if inline is not None:
            moved.append(inline.fn)
    inside: list[cst.Name] = []
    for node in parsed.of_type(cst.Name):
        if node is target or node.value != name or _not_a_variable(parsed, node):
            continue
        if _another_functions_own(parsed, node, ctx.loop.driver):
            continue  # `def save(optimizer): ...`: a parameter of the same name, not it
        if not any(contains(m, node) for m in moved):
            raise _NotFaithful(f"{what} is also used at line {ctx.lineof(node)}")
        inside.append(node)
    # what the passes left of it in the hooks and around the Trainer call
    plan = ctx.plan
    held = _held_for_hooks(plan, name)
    elsewhere = any(
        name in _words(text)
        for text in [
            *(value for attr, value in plan.ctor.items() if attr != held),
            *plan.writebacks,
            *plan.post_fit,
            *plan.fit_kwargs.values(),
            *plan.trainer_flags.values(),
            *plan.callbacks,
        ]
    )
    if held is not None and not elsewhere and not _rebound_in_hooks(plan, held):
        return held  # the hooks read it: through self.optimizers() / self.lr_schedulers()
    if name in plan.name_map or elsewhere:
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
        raise _NotFaithful(f"{what} is also used at line {line}")
    return None


def _held_for_hooks(plan, name: str) -> str | None:
    """The attribute `self.<attr>` through which the hooks read the driver's `name`, if any."""
    node = plan.name_map.get(name)
    if node is None or not code(node).startswith("self."):
        return None
    attr = code(node)[len("self.") :]
    return attr if plan.ctor.get(attr) == name else None


def _self_attr(node, attr: str) -> bool:
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == "self"
        and node.attr.value == attr
    )


def _rebound_in_hooks(plan, attr: str) -> bool:
    """Whether a hook assigns `self.<attr>` itself (an accessor cannot stand for it there)."""
    for stmts in plan.sections.values():
        for st in stmts:
            for node in walk(st):
                targets = []
                if isinstance(node, cst.Assign):
                    targets = [t.target for t in node.targets]
                elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.Del)):
                    targets = [node.target]
                if any(_self_attr(t, attr) for t in targets):
                    return True
    return False


class _Accessor(cst.CSTTransformer):
    """`self.<attr>` -> `self.optimizers()` / `self.lr_schedulers()`."""

    def __init__(self, attr: str, accessor: str):
        self.attr, self.accessor = attr, cst.parse_expression(accessor)

    def leave_Attribute(self, original, updated):
        return self.accessor if _self_attr(original, self.attr) else updated


def _another_functions_own(parsed, node: cst.Name, driver) -> bool:
    """Whether `node` is a local of a function other than the driver (and those around it):
    a parameter or a variable of the same name there is another variable."""
    scope = parsed.parent(node)
    while scope is not None and scope is not driver:
        if isinstance(scope, cst.FunctionDef):
            own = param_names(scope.params) | bound_names(body_of(scope))
            if node.value in own - _declared_outer(scope):
                return True
        elif isinstance(scope, cst.Lambda) and node.value in param_names(scope.params):
            return True
        scope = parsed.parent(scope)
    return False


def _declared_outer(fn: cst.FunctionDef) -> set[str]:
    """The names a function's `global` / `nonlocal` statements hand to an outer scope."""
    return {
        item.name.value
        for st in body_of(fn)
        if isinstance(st, cst.SimpleStatementLine)
        for small in st.body
        if isinstance(small, (cst.Global, cst.Nonlocal))
        for item in small.names
    }


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


def _arguments(ctx, one: _Built, driver, where: str, top, loop_at: int, built, own: set[str]):
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
        raise _NotFaithful(problem[0])
    for n in walk(call):
        if isinstance(n, cst.Name) and n.value in model_names and n.value in reads:
            parent = parsed.parent(n)
            if not (isinstance(parent, cst.Attribute) and parent.value is n):
                raise _NotFaithful(f"its arguments use `{n.value}` itself, not its parameters")
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
                raise _NotFaithful(f"`{name}` is not the model the LightningModule holds")
            mapping[name] = mapped
            continue
        if name in ("True", "False", "None") or (name in _BUILTINS and not module_binds.get(name)):
            continue
        if not module_driver:
            if name in _bound_in(driver):
                _check_local(ctx, name, driver, top, at, between)
                held.add(name)
                continue
            if module_binds.get(name, 0) == 1 and _bound_before_the_driver(ctx, name):
                if any(_may_change(s, name) for s in between):
                    raise _NotFaithful(
                        f"its arguments use `{name}`, which {where} may change before the loop"
                    )
                continue  # the class reads the very same object when fit starts
            raise _NotFaithful(f"its arguments use `{name}`, a global read from {where}")
        if module_binds.get(name, 0) != 1:
            raise _NotFaithful(f"its arguments use `{name}`, bound more than once")
        bound_at = [i for i, s in enumerate(top) if name in bound_names([s])]
        if not bound_at or bound_at[0] >= at:
            raise _NotFaithful(f"its arguments use `{name}`, not bound before it")
        for s in between:
            if any(isinstance(x, cst.Name) and x.value == name for x in walk(s)):
                raise _NotFaithful(
                    f"its arguments use `{name}`, which line {ctx.lineof(s)} touches again"
                )
    # the parameters it gets must be the very ones the loop trains
    watched = (set(model_names) | set(reads)) - own
    if any(isinstance(n, cst.CompIf) for n in walk(call)):
        # a filter (`if p.requires_grad`) reads the parameters' state when it runs: nothing
        # between may touch the model (freezing a layer would change what it picks)
        for s in between:
            if any(isinstance(x, cst.Name) and x.value in model_names for x in walk(s)):
                raise _NotFaithful(
                    f"its arguments filter the parameters and line {ctx.lineof(s)} touches"
                    " the model before the loop"
                )
    for s in between:
        rebound = watched & bound_names([s])
        if rebound:
            what = "the model" if rebound & model_names else f"`{min(rebound)}`"
            raise _NotFaithful(f"{what} is rebound at line {ctx.lineof(s)}, after it")
    # the statement that holds the loop (`if __name__ == "__main__":`, `with ...:`), the loop
    # included: nothing in it may rebind them either
    inner = watched & bound_names([top[loop_at]])
    if inner:
        what = "the model" if inner & model_names else f"`{min(inner)}`"
        raise _NotFaithful(
            f"{what} is rebound in the block of the loop (line {ctx.lineof(top[loop_at])})"
        )
    return mapping, held


def _check_local(ctx, name: str, driver, top, at: int, between) -> None:
    """A local of the loop's function that the LightningModule can hold and read at fit: bound
    once (a parameter, or one statement before `at`), and nothing between may change it."""
    binding = [i for i, s in enumerate(top) if name in bound_names([s])]
    is_param = name in param_names(driver.params)
    if len(binding) + is_param != 1 or (binding and binding[0] >= at):
        raise _NotFaithful(f"its arguments use `{name}`, bound more than once in the function")
    for s in between:
        if _may_change(s, name):
            raise _NotFaithful(f"its arguments use `{name}`, which line {ctx.lineof(s)} may change")


def _may_change(st, name: str) -> bool:
    """Whether `st` may rebind or mutate `name`: assigns to it or through it (`args.lr = ..`),
    passes it whole to a call, or calls a method on it (conservative)."""
    if name in bound_names([st]):
        return True
    for node in walk(st):
        targets = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.Del)):
            targets = [node.target]
        if any(_root(t) == name for t in targets):
            return True
        if isinstance(node, cst.Call):
            if isinstance(node.func, cst.Attribute) and _root(node.func.value) == name:
                return True
            if any(isinstance(a.value, cst.Name) and a.value.value == name for a in node.args):
                return True
    return False


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
