"""Decide what each name in the moved code becomes.

- a name shared between hooks, or carried across iterations, is state: `self.name`;
- a name read from the scope that drove the loop is passed to the constructor: `self.name`;
- `self.x` of the user's class (HOST) is passed the same way when only read, else `self.host.x`;
- module-level functions, classes, imports and constants stay global.
"""

from __future__ import annotations

import keyword

import libcst as cst

from torch_scaffold.convert.nodes import body_of, contains, mentions, visit, walk
from torch_scaffold.convert.plan import BATCH_END, HOST, TRAIN_STEP
from torch_scaffold.convert.scope import param_names, rename, statement_usage

# attributes a LightningModule already has: a user name that collides gets a suffix
RESERVED = {
    "automatic_optimization",
    "backward",
    "current_epoch",
    "device",
    "device_mesh",
    "dtype",
    "example_input_array",
    "fabric",
    "forward",
    "global_rank",
    "global_step",
    "hparams",
    "hparams_initial",
    "local_rank",
    "log",
    "log_dict",
    "logger",
    "loggers",
    "lr_schedulers",
    "optimizers",
    "precision",
    "print",
    "trainer",
    "training",
    "train",
    "eval",
    "to",
    "cuda",
    "cpu",
    "parameters",
    "modules",
    "children",
    "state_dict",
    "apply",
    "float",
    "half",
    "double",
    "type",
    "zero_grad",
    "freeze",
    "unfreeze",
    "setup",
    "teardown",
    "training_step",
    "compile",
    "save_hyperparameters",
    "toggle_optimizer",
    "untoggle_optimizer",
    "manual_backward",
    "clip_gradients",
    "on_gpu",
    "strict_loading",
    "register_buffer",
    "buffers",
    "all_gather",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
    "prepare_data",
    "configure_optimizers",
    "configure_callbacks",
    "configure_model",
    "validation_step",
    "test_step",
    "predict_step",
    "lr_scheduler_step",
    "optimizer_step",
    "optimizer_zero_grad",
    "transfer_batch_to_device",
    "load_state_dict",
    "named_parameters",
    "named_modules",
    "requires_grad_",
    "register_module",
    "add_module",
    "get_submodule",
    "share_memory",
}


def attr_name(name: str) -> str:
    return name + "_" if name in RESERVED or keyword.iskeyword(name) else name


class _HostUses(cst.CSTVisitor):
    def __init__(self):
        self.used: set[str] = set()
        self.called: set[str] = set()
        self.stored: set[str] = set()

    def _host_attr(self, node):
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == HOST
        ):
            return node.attr.value
        return None

    def visit_Attribute(self, node):
        a = self._host_attr(node)
        if a:
            self.used.add(a)

    def visit_Call(self, node):
        a = self._host_attr(node.func)
        if a:
            self.called.add(a)

    def visit_AssignTarget(self, node):
        for n in walk(node.target):
            a = self._host_attr(n)
            if a:
                self.stored.add(a)

    def visit_AugAssign(self, node):
        a = self._host_attr(node.target)
        if a:
            self.stored.add(a)


class _PromoteHost(cst.CSTTransformer):
    def __init__(self, names: set[str]):
        self.names = names

    def leave_Attribute(self, original, updated):
        if (
            isinstance(updated.value, cst.Name)
            and updated.value.value == HOST
            and updated.attr.value in self.names
        ):
            return cst.Name(updated.attr.value)
        return updated


def promote_host(
    sections: dict, free_names: set[str], methods: set[str]
) -> tuple[dict, dict[str, str]]:
    """`__host__.x` that is only read -> plain name `x` (passed in as `self.x`)."""
    v = _HostUses()
    for stmts in sections.values():
        for s in stmts:
            visit(s, v)
    promote = {
        a for a in v.used - v.stored - (v.called & methods) if a not in free_names and a != "device"
    }
    device_attr = "device" in v.used and "device" not in v.stored
    driver = {a: f"self.{a}" for a in promote}
    out = sections
    for names in (promote, {"device"} if device_attr else set()):
        if names:  # only statements that mention the host can change: the rest stay unrebuilt
            t = _PromoteHost(names)
            out = {k: [_visit_host(s, t) for s in stmts] for k, stmts in out.items()}
    return out, driver


def _visit_host(s: cst.CSTNode, t: cst.CSTTransformer) -> cst.CSTNode:
    return s.visit(t) if mentions(s, (HOST,)) else s


def driver_locals(driver: cst.CSTNode, replaced: cst.CSTNode) -> set[str]:
    """Names bound in the driving scope, outside the replaced loop."""
    from torch_scaffold.convert.nodes import pass_stmt

    stmts = []
    for s in body_of(driver):
        if s is replaced:
            continue
        if contains(s, replaced):
            s = s.deep_replace(replaced, pass_stmt())
        stmts.append(s)
    if isinstance(driver, cst.Module):
        names = set()
        for s in stmts:
            if isinstance(s, (cst.FunctionDef, cst.ClassDef)) or (
                isinstance(s, cst.SimpleStatementLine)
                and all(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body)
            ):
                continue  # functions, classes and imports stay global
            names |= {n for n in statement_usage([s]).binds if not n.isupper()}
        return names
    return param_names(driver.params) | statement_usage(stmts).binds


def _read_before_bound(usage: dict, name: str) -> bool:
    """Whether the first hook to run that uses `name` reads it before binding it."""
    from torch_scaffold.convert.plan import HOOKS

    for hook in HOOKS:
        u = usage.get(hook)
        if u is not None and (name in u.reads or name in u.binds):
            return name in u.read_first
    return False


def _module_state(ctx) -> set[str]:
    """Names the module binds at its top level by assignment (constants' case included)."""
    names: set[str] = set()
    for s in ctx.parsed.module.body:
        if isinstance(s, cst.SimpleStatementLine) and not any(
            isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body
        ):
            names |= statement_usage([s]).binds
    return names


def after_reads(driver: cst.CSTNode, replaced: cst.CSTNode) -> set[str]:
    """Names read after the replaced loop in the driving scope."""
    stmts = body_of(driver)
    out: set[str] = set()
    bound: set[str] = set()
    seen = False
    for s in stmts:
        if s is replaced or contains(s, replaced):
            seen = True
            if s is not replaced:
                # statements after the loop inside the same block
                out |= _after_in(s, replaced)
            continue
        if seen:
            out |= set(statement_usage([s]).read_first - bound)
            bound |= statement_usage([s]).binds
    return out


def _after_in(holder, replaced) -> set[str]:
    out: set[str] = set()
    for block_stmts in _blocks(holder):
        seen = False
        for s in block_stmts:
            if s is replaced or contains(s, replaced):
                seen = True
                if s is not replaced:
                    out |= _after_in(s, replaced)
                continue
            if seen:
                out |= set(statement_usage([s]).read_first)
    return out


def _blocks(node):
    body = body_of(node)
    return [body] if body else []


def run(ctx) -> None:
    """Rename names in all hooks and fill plan.ctor / plan.writebacks."""
    plan, raw, loop = ctx.plan, ctx.raw, ctx.loop
    hooks = {k: v for k, v in plan.sections.items() if v}
    # the names each hook binds for itself
    own = {
        TRAIN_STEP: {plan.batch_param, plan.index_param},
        BATCH_END: {"outputs", "batch", plan.index_param},
    }
    usage = {k: statement_usage(v) for k, v in hooks.items()}
    free_now = set().union(*[u.reads for u in usage.values()]) if usage else set()
    hooks, host_driver = promote_host(hooks, free_now, ctx.ix.methods)
    usage = {k: statement_usage(v) for k, v in hooks.items()}
    for k, u in usage.items():
        for n in own.get(k, ()):
            u.binds.add(n)
            u.read_first.discard(n)
    d_locals = driver_locals(loop.driver, raw.replaced) | set(host_driver)
    # module-level variables (model, optimizer, loaders...) are passed in too, so that
    # every module the step uses is registered on the LightningModule
    d_locals |= driver_locals(ctx.parsed.module, raw.replaced)
    if isinstance(loop.driver, cst.FunctionDef) and _is_method(ctx, loop.driver):
        d_locals.add(HOST)
    after = after_reads(loop.driver, raw.replaced)
    devices = {d for d in ctx.plan.roles.devices if "." not in d}
    if any(d.startswith(HOST + ".") and d.endswith("device") for d in ctx.plan.roles.devices):
        devices.add("device")

    mapping: dict[str, cst.BaseExpression] = {}
    all_names = set()
    for u in usage.values():
        all_names |= u.reads | u.binds
    all_names.discard("self")  # what is left of `self` is the LightningModule's own
    module_globals: set[str] = set()  # module-level names the hooks update
    for name in sorted(all_names):
        if name in devices and name not in set().union(*[u.binds for u in usage.values()]):
            mapping[name] = cst.parse_expression("self.device")
            continue
        binders = [k for k, u in usage.items() if name in u.binds]
        users = [k for k, u in usage.items() if name in u.reads or name in u.binds]
        if binders:
            if all(name in own.get(k, ()) for k in users):
                continue  # a parameter of each hook that uses it
            is_state = any(name in u.read_first for u in usage.values()) or name in after
            if not is_state:
                continue
            attr = attr_name(name)
            mapping[name] = cst.parse_expression(f"self.{attr}")
            read_first = any(name in u.read_first for u in usage.values())
            if (read_first or name in after) and name in d_locals:
                plan.ctor[attr] = host_driver.get(name, name)
            elif _read_before_bound(usage, name) and name in _module_state(ctx):
                # a module-level variable the loop updates (`global SEEN` where the loop
                # came from, or the loop at module level): _module_global passes it in
                # and writes it back, once the hooks are final
                plan.ctor[attr] = name
                module_globals.add(name)
            elif _read_before_bound(usage, name):
                from torch_scaffold.convert.analyze import Refusal

                raise Refusal(
                    f"the loop reads `{name}` before it assigns it, and the converter cannot "
                    "tell where its first value comes from"
                )
            elif attr not in plan.ctor:
                plan.state_init_none.append(attr)
            if name in after and name not in ctx.plan.roles.models and name not in module_globals:
                plan.writebacks.append(f"{name} = {{lit}}.{attr}")
        elif name in d_locals:
            attr = "host" if name == HOST else attr_name(name)
            mapping[name] = cst.parse_expression(f"self.{attr}")
            plan.ctor[attr] = "self" if name == HOST else host_driver.get(name, name)
    # the loss expression and role expressions follow the same renaming
    ctx.plan.name_map = mapping
    plan.sections = {k: [rename(s, mapping) for s in v] for k, v in hooks.items()}
    for k in list(plan.sections):
        plan.sections[k] = [_drop_nonlocal(s) for s in plan.sections[k]]
        plan.sections[k] = [s for s in plan.sections[k] if s is not None]
        # a hook parameter (the batch index, the batch) that other hooks read as state:
        # the hook that receives it stores it, as the loop variable did
        stores = [
            f"{cst.Module([]).code_for_node(mapping[n])} = {n}"
            for n in sorted(own.get(k, ()))
            if n in mapping and n in usage[k].reads | usage[k].binds
        ]
        if stores:
            plan.sections[k] = [cst.parse_statement(x) for x in stores] + plan.sections[k]
    _conditional_arguments(ctx, module_globals)


def _conditional_arguments(ctx, module_globals: set[str]) -> None:
    """A name the driver binds only on some paths (`if args.resume: warm = ...`) cannot be
    passed unconditionally: the default path would raise NameError. Pass it under the
    condition that binds it, or, when that cannot be told, only if it is bound."""
    from torch_scaffold.convert.nodes import code
    from torch_scaffold.convert.result import KEPT
    from torch_scaffold.convert.scope import bound_before

    loop, raw, plan = ctx.loop, ctx.raw, ctx.plan
    driver = loop.driver
    sure = bound_before(driver, raw.replaced, ctx.parsed.parent)
    local = driver_locals(driver, raw.replaced)
    declared = _declared_global(driver)
    for attr, value in list(plan.ctor.items()):
        if value in declared or value in module_globals:
            _module_global(ctx, driver, attr, value)
            continue
        if not value.isidentifier() or value in sure or value not in local:
            continue
        found = _binding_condition(ctx, driver, raw.replaced, value)
        if found is not None:
            test, stmt_node = found
            expr = cst.IfExp(test=test, body=cst.Name(value), orelse=cst.Name("None"))
            from torch_scaffold.convert import precedence

            plan.ctor[attr] = code(precedence.fix(expr))
            ctx.note(
                KEPT,
                f"`{value}` is bound only when `{code(test)}` (line {ctx.lineof(stmt_node)}): "
                f"the LightningModule gets `{plan.ctor[attr]}`",
                stmt_node,
            )
        else:
            scope = "globals" if isinstance(driver, cst.Module) else "locals"
            plan.ctor[attr] = f'{scope}().get("{value}")'
            ctx.note(
                KEPT,
                f"`{value}` is not bound on every path to the training loop: the "
                f"LightningModule gets `{plan.ctor[attr]}` (None where it is unbound)",
            )


def _declared_global(fn) -> set[str]:
    """Names a function declares `global`: they are the module's, not its locals."""
    if not isinstance(fn, cst.FunctionDef):
        return set()
    return {n.name.value for g in walk(fn) if isinstance(g, cst.Global) for n in g.names}


def _module_global(ctx, driver, attr: str, name: str) -> None:
    """The one handling of a module-level name the training loop uses: declared `global`
    in the loop's function, or a module variable the loop updates (through a `global` in
    the function it came from, or at module level). The LightningModule gets its value,
    `name` itself where the module surely binds it before the driver can run, else
    `globals().get("name")` (None where it is unbound). Where the hooks update it, the
    module's variable is set again after fit(), through `globals()` where the driver does
    not declare it global (a plain assignment would make it the driver's local); any other
    function that reads it during training would see the value before fit(): refused."""
    from torch_scaffold.convert.analyze import Refusal
    from torch_scaffold.convert.result import KEPT

    function = isinstance(driver, cst.FunctionDef)
    bound = not function or _bound_before_def(ctx, driver, name)
    ctx.plan.ctor[attr] = name if bound else f'globals().get("{name}")'
    if not _hooks_write(ctx, attr):
        return  # only read: the global and the attribute stay the same object
    for fns in ctx.ix.functions.values():
        for fn in fns:
            if fn is driver or fn in ctx.raw.inlined:  # an inlined body reads the attribute
                continue
            if any(isinstance(n, cst.Name) and n.value == name for n in walk(fn.body)):
                where = f"{driver.name.value}()" if function else "the training loop"
                raise Refusal(
                    f"`{name}` is a module-level variable that {where} updates and "
                    f"{fn.name.value}() (line {ctx.lineof(fn)}) also uses: it would see the "
                    "value from before training",
                    ctx.lineof(fn),
                )
    plain = f"{name} = {{lit}}.{attr}"
    declared = not function or name in _declared_global(driver)
    back = plain if declared else f'globals()["{name}"] = {{lit}}.{attr}'
    ctx.plan.writebacks = [w for w in ctx.plan.writebacks if w != plain]
    if name not in ctx.plan.roles.models:
        ctx.plan.writebacks.append(back)
    if function:
        ctx.note(
            KEPT,
            f"`{name}` is a module-level variable that the training loop updates: the "
            f"LightningModule gets `{ctx.plan.ctor[attr]}` and the module's `{name}` is set "
            "again after training",
        )


def _bound_before_def(ctx, driver: cst.FunctionDef, name: str) -> bool:
    """Whether a module-level statement binds `name` unconditionally before the module-level
    statement that defines the driver (the function, or the class of the method): the
    driver cannot run before its definition, so `name` is bound whenever it runs (unless
    something deletes it)."""
    top = driver
    while ctx.parsed.parent(top) is not None and not isinstance(ctx.parsed.parent(top), cst.Module):
        top = ctx.parsed.parent(top)
    for n in ctx.parsed.of_type(cst.Del):
        if any(isinstance(m, cst.Name) and m.value == name for m in walk(n)):
            return False
    for s in ctx.parsed.module.body:
        if s is top:
            return False
        if (
            isinstance(s, cst.SimpleStatementLine)
            and not any(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body)
            and name in statement_usage([s]).binds
        ):
            return True
    return False


def _hooks_write(ctx, attr: str) -> bool:
    """Whether a hook assigns `self.<attr>` (the renamed local)."""
    for stmts in ctx.plan.sections.values():
        for st in stmts:
            for n in walk(st):
                target = (
                    n.target
                    if isinstance(n, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign))
                    else None
                )
                if target is not None and any(
                    isinstance(m, cst.Attribute)
                    and isinstance(m.value, cst.Name)
                    and m.value.value == "self"
                    and m.attr.value == attr
                    for m in walk(target)
                ):
                    return True
    return False


def _binding_condition(ctx, driver, replaced, name):
    """(test, if statement) when `name` is bound, before the loop, only by one `if` whose
    branch surely binds it and whose test reads nothing rebound later; else None."""
    from torch_scaffold.convert.scope import body_of_block, definitely_bound, expr_reads

    blocks = []  # statements before the loop, in each block on the way to it
    cur, child = ctx.parsed.parent(replaced), replaced
    while cur is not None:
        if isinstance(cur, (cst.Module, cst.IndentedBlock)):
            body = list(cur.body)
            blocks.append(body[: next(i for i, s in enumerate(body) if s is child)])
        if cur is driver:
            break
        cur, child = ctx.parsed.parent(cur), cur
    before = [s for block in reversed(blocks) for s in block]
    binders = [i for i, s in enumerate(before) if name in statement_usage([s]).binds]
    if len(binders) != 1 or not isinstance(before[binders[0]], cst.If):
        return None
    node = before[binders[0]]
    if isinstance(node.orelse, cst.If):
        return None  # elif chains: not attempted
    if any(isinstance(n, (cst.NamedExpr, cst.Await, cst.Yield)) for n in walk(node.test)):
        return None
    body = body_of_block(node.body)
    other = body_of_block(node.orelse.body) if node.orelse is not None else []
    if name in (definitely_bound(body) or ()) and name not in statement_usage(other).binds:
        test = node.test
    elif (
        other
        and name in (definitely_bound(other) or ())
        and name not in statement_usage(body).binds
    ):
        test = cst.UnaryOperation(cst.Not(), node.test)
    else:
        return None
    later = statement_usage([node, *before[binders[0] + 1 :]]).binds
    if set(expr_reads(node.test)) & later:
        return None  # the test's value may have changed by the time of the Trainer call
    return test.with_changes(lpar=[], rpar=[]) if test.lpar else test, node


def _drop_nonlocal(s):
    if isinstance(s, cst.SimpleStatementLine) and all(
        isinstance(x, (cst.Nonlocal, cst.Global)) for x in s.body
    ):
        return None
    return s


def _is_method(ctx, fn) -> bool:
    params = fn.params.params
    return bool(params) and params[0].name.value == "self" and ctx.ix.class_of(fn) is not None
