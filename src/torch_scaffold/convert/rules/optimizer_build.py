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
  functions that only compute (optimizer_args.py), and names local to the loop's
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
from torch_scaffold.convert.rules.optimizer_args import (
    NotFaithful,
    arguments,
    assignment_targets,
    bound_in,
)
from torch_scaffold.convert.scope import function_locals, param_names, rename
from torch_scaffold.convert.state import attr_name

_MARKERS = ("# %% [scaffold convert", "# scaffold convert:")  # notebook.py's marker lines


def run(ctx) -> None:
    plan = ctx.plan
    try:
        optimizer, scheduler, mapping, held, accessors = _check(ctx)
    except NotFaithful as why:
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
        raise NotFaithful(f"{len(roles.optimizers)} optimizers (manual optimization)")
    if plan.manual:
        raise NotFaithful("it is stepped by hand (manual optimization)")
    if loop.kind == "closure" or loop.closure_fn is not None:
        raise NotFaithful("it steps with a closure")
    name = roles.optimizers[0]
    if "." in name:
        raise NotFaithful(f"it is an attribute (`{name.replace(HOST, 'self')}`)")
    driver, replaced = loop.driver, ctx.raw.replaced
    where = "module level" if isinstance(driver, cst.Module) else f"{driver.name.value}()"
    top = body_of(driver)
    loop_at = next((i for i, s in enumerate(top) if s is replaced or contains(s, replaced)), None)
    if loop_at is None:
        raise NotFaithful("the loop is not at the top level of its scope")
    optimizer = _assignment(ctx, top[:loop_at], name, where, "it")
    qname = parsed.qname(optimizer.call.func)
    if not qname or not qname.startswith("torch.optim.") or "lr_scheduler" in qname:
        raise NotFaithful("it is not built by a torch.optim class call")
    if qname.rsplit(".", 1)[-1] == "LBFGS":
        raise NotFaithful("LBFGS steps with a closure")
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
        if head not in parsed.aliases or head in bound_in(driver):
            raise NotFaithful(f"`{head}` is not a module-level import")
        own = {optimizer.name} if one is scheduler else set()
        found, needs = arguments(ctx, one, driver, where, top, loop_at, built, own)
        if one is scheduler and found:
            raise NotFaithful("the scheduler's arguments use the model")
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
        raise NotFaithful(f"{what} is not bound by one plain assignment before the loop at {where}")
    at, line = found[0]
    call = line.body[0].value
    if not isinstance(call, cst.Call):
        raise NotFaithful(f"{what} is not built by a torch.optim class call")
    return _Built(line, name, call, at)


def _scheduler(ctx, top, optimizer: _Built, loop_at: int, where: str) -> _Built | None:
    """The scheduler built on the optimizer between it and the loop, when it can go along."""
    plan, ix = ctx.plan, ctx.ix
    if not plan.schedulers and not ix.sched_targets:
        return None
    if len(plan.schedulers) != 1 or len(ix.sched_targets) != 1:
        raise NotFaithful("a scheduler is built on it")
    name = plan.schedulers[0].expr
    if "." in name:
        raise NotFaithful(f"its scheduler is an attribute (`{name.replace(HOST, 'self')}`)")
    scheduler = _assignment(ctx, top[:loop_at], name, where, "its scheduler")
    qname = ctx.parsed.qname(scheduler.call.func) or ""
    if not qname.startswith("torch.optim.lr_scheduler."):
        raise NotFaithful("its scheduler is not built by a torch.optim.lr_scheduler class call")
    if scheduler.at < optimizer.at:
        raise NotFaithful("its scheduler is bound before it")
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
        raise NotFaithful("its scheduler is not built on it by name")
    held = _only_stepped(ctx, name, scheduler.line, what="its scheduler")
    return replace(scheduler, held=held)


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
            raise NotFaithful(f"{what} is also used at line {ctx.lineof(node)}")
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
        raise NotFaithful(f"{what} is also used at line {line}")
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
                if any(_self_attr(t, attr) for t in assignment_targets(node)):
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
        if (
            isinstance(scope, cst.FunctionDef)
            and node.value in function_locals(scope)
            or isinstance(scope, cst.Lambda)
            and node.value in param_names(scope.params)
        ):
            return True
        scope = parsed.parent(scope)
    return False


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
