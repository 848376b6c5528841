"""Find the training loop: where backward() runs, which loop feeds it batches, which
loop counts epochs, and which scope drives it all.

Shapes handled (all found the same way, by following backward() outwards):
- an inline loop at module level, or inside main();
- a train(...) function holding the batch loop, called from an epoch loop;
- a step function without a loop (train_step(batch)) called from the batch loop;
- methods of a class (`self._train_epoch(loader)` called from `self.fit`);
- `while step < max_steps` / `for it in range(n)` loops that fetch their own batches;
- an optimizer closure (`optimizer.step(closure)`, LBFGS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from torch_scaffold.convert.nodes import code, dotted, method_call, walk
from torch_scaffold.convert.parse import Parsed

LOOPS = (cst.For, cst.While)


class Refusal(Exception):
    """Analysis found something it cannot convert safely (message names lines).

    manual_ok: what automatic optimization cannot express (an accumulation window of the
    script's own, a scheduler stepped with an argument or under a condition), where
    manual optimization, which keeps the script's own steps, would be the same."""

    def __init__(self, message: str, line: int | None = None, manual_ok: bool = False):
        super().__init__(message)
        self.message = message
        self.line = line
        self.manual_ok = manual_ok


@dataclass
class Inline:
    """A call to a user function whose body moves into the new module."""

    fn: cst.FunctionDef
    call: cst.Call
    bindings: dict[str, cst.BaseExpression]  # parameter -> argument expression


@dataclass
class LoopFacts:
    kind: str  # "loader" | "steps" | "closure"
    backward_calls: list[cst.Call]
    batch_loop: cst.CSTNode  # the loop whose one iteration is one training step
    batch_scope: cst.CSTNode  # FunctionDef or Module holding batch_loop
    step_inline: Inline | None = None  # step function called from the batch loop
    closure_fn: cst.FunctionDef | None = None
    closure_step_stmt: cst.CSTNode | None = None
    epoch_loop: cst.CSTNode | None = None
    epoch_inline: Inline | None = None  # the train(...) call inside the epoch loop
    driver: cst.CSTNode | None = None  # scope replaced by the Trainer call
    optimizers: list[str] = field(default_factory=list)


class Index:
    """Parents and definitions, computed once per parse."""

    def __init__(self, parsed: Parsed):
        self.p = parsed
        self.functions: dict[str, list[cst.FunctionDef]] = {}
        self.classes: dict[str, cst.ClassDef] = {}
        self.optim_targets: dict[str, str] = {}  # last name component -> qualified class
        self.sched_targets: dict[str, str] = {}
        self.backward_calls: list[cst.Call] = []
        self.module_binds: set[str] = set()
        self.methods: set[str] = set()
        self.optimized_models: list[str] = []
        self.construct_lines: dict[str, int | None] = {}
        for node in parsed.of_type(cst.FunctionDef):
            self.functions.setdefault(node.name.value, []).append(node)
        for node in parsed.of_type(cst.ClassDef):
            self.classes[node.name.value] = node
            for st in node.body.body if isinstance(node.body, cst.IndentedBlock) else ():
                if isinstance(st, cst.FunctionDef):
                    self.methods.add(st.name.value)
        for node in parsed.of_type(cst.Call):
            self._note_call(node)

    def _note_call(self, node: cst.Call) -> None:
        mc = method_call(node)
        if (
            mc
            and mc[1] == "backward"
            and not node.args
            or (mc and mc[1] == "backward" and all(a.keyword for a in node.args))
            or self.p.qname(node.func) in ("torch.autograd.backward",)
        ):
            self.backward_calls.append(node)
        q = self.p.qname(node.func) or ""
        if q.startswith("torch.optim.") and not q.startswith("torch.optim.lr_scheduler"):
            name = q.rsplit(".", 1)[-1]
            if name[:1].isupper():
                tgt = self._assign_target(node)
                if tgt:
                    self.optim_targets[tgt] = q
                    self.construct_lines[tgt] = self.p.line(node)
                # whose parameters it optimizes: `Adam(model.parameters())` -> model
                for n in walk(node):
                    mc = method_call(n)
                    if mc and mc[1] in ("parameters", "named_parameters"):
                        d = dotted(mc[0])
                        if d and d not in self.optimized_models:
                            self.optimized_models.append(d)
        elif q.startswith("torch.optim.lr_scheduler."):
            tgt = self._assign_target(node)
            if tgt:
                self.sched_targets[tgt] = q
                self.construct_lines[tgt] = self.p.line(node)

    def _assign_target(self, call: cst.Call) -> str | None:
        parent = self.p.parent(call)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            d = dotted(parent.targets[0].target)
            if d:
                return d.rsplit(".", 1)[-1]
        return None

    # ---------------------------------------------------------------- structure
    def enclosing(self, node: cst.CSTNode, kinds) -> cst.CSTNode | None:
        cur = self.p.parent(node)
        while cur is not None and not isinstance(cur, kinds):
            cur = self.p.parent(cur)
        return cur

    def scope_of(self, node: cst.CSTNode) -> cst.CSTNode:
        return self.enclosing(node, (cst.FunctionDef, cst.Module)) or self.p.module

    def loops_between(self, node: cst.CSTNode, scope: cst.CSTNode) -> list[cst.CSTNode]:
        """Loops enclosing node inside scope, innermost first."""
        out = []
        prev, cur = node, self.p.parent(node)
        while cur is not None and cur is not scope:
            if isinstance(cur, LOOPS) and (prev is cur.body or prev is cur.orelse):
                out.append(cur)
            if isinstance(cur, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                break
            prev, cur = cur, self.p.parent(cur)
        return out

    def class_of(self, fn: cst.FunctionDef) -> cst.ClassDef | None:
        parent = self.p.parent(fn)
        if isinstance(parent, cst.IndentedBlock):
            parent = self.p.parent(parent)
        return parent if isinstance(parent, cst.ClassDef) else None

    def calls_to(self, fn: cst.FunctionDef) -> list[cst.Call]:
        """Call sites of a function: `f(...)`, `self.f(...)` in its class, `obj.f(...)` if unique."""
        name = fn.name.value
        cls = self.class_of(fn)
        unique = len(self.functions.get(name, [])) == 1
        out = []
        for node in self.p.of_type(cst.Call):
            f = node.func
            if (
                cls is None
                and isinstance(f, cst.Name)
                and f.value == name
                and self._resolves_to(node, fn)
            ):
                out.append(node)
            elif cls is not None and isinstance(f, cst.Attribute) and f.attr.value == name:
                on_self = isinstance(f.value, cst.Name) and f.value.value == "self"
                if (on_self and self._in_class(node, cls)) or unique:
                    out.append(node)
        return out

    def _resolves_to(self, call: cst.Call, fn: cst.FunctionDef) -> bool:
        # a nested function is only visible inside the function that defines it
        fn_scope = self.scope_of(fn)
        if isinstance(fn_scope, cst.Module):
            return True
        cur = self.p.parent(call)
        while cur is not None:
            if cur is fn_scope:
                return True
            cur = self.p.parent(cur)
        return False

    def _in_class(self, node: cst.CSTNode, cls: cst.ClassDef) -> bool:
        return self.enclosing(node, (cst.ClassDef,)) is cls


def bind_call(
    fn: cst.FunctionDef, call: cst.Call, line: int | None
) -> dict[str, cst.BaseExpression]:
    """Map a function's parameters to the call's argument expressions."""
    params = list(fn.params.posonly_params) + list(fn.params.params)
    bindings: dict[str, cst.BaseExpression] = {}
    if isinstance(fn.params.star_arg, cst.Param) or fn.params.star_kwarg is not None:
        raise Refusal(
            f"{fn.name.value}() takes *args/**kwargs; cannot tell which argument is which", line
        )
    if isinstance(call.func, cst.Attribute) and params and params[0].name.value == "self":
        bindings["self"] = call.func.value
        params = params[1:]
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in call.args):
        raise Refusal(f"call to {fn.name.value}() unpacks *args/**kwargs", line)
    for param, arg in zip(params, positional):
        bindings[param.name.value] = arg.value
    for a in call.args:
        if a.keyword is not None:
            bindings[a.keyword.value] = a.value
    for param in params + list(fn.params.kwonly_params):
        name = param.name.value
        if name not in bindings:
            if param.default is None:
                raise Refusal(f"call to {fn.name.value}() misses argument {name!r}", line)
            bindings[name] = param.default
    return bindings


def _is_closure_backward(ix: Index, call: cst.Call) -> tuple[cst.FunctionDef, cst.Call] | None:
    fn = ix.enclosing(call, (cst.FunctionDef,))
    if fn is None:
        return None
    scope = ix.scope_of(fn)
    for node in ix.p.of_type(cst.Call, within=scope):
        mc = method_call(node)
        if (
            mc
            and mc[1] == "step"
            and any(
                isinstance(a.value, cst.Name) and a.value.value == fn.name.value for a in node.args
            )
        ):
            return fn, node
    return None


def find_loop(parsed: Parsed, ix: Index) -> LoopFacts:
    calls = ix.backward_calls
    if not calls:
        raise Refusal("no training loop found: nothing calls .backward()")
    first = calls[0]
    line = parsed.line(first)
    facts: LoopFacts | None = None

    closure = _is_closure_backward(ix, first)
    if closure is not None:
        fn, step_call = closure
        scope = ix.scope_of(step_call)
        loops = ix.loops_between(step_call, scope)
        if not loops:
            raise Refusal("optimizer closure is not stepped inside a loop", parsed.line(step_call))
        step_stmt = ix.enclosing(step_call, (cst.SimpleStatementLine,))
        facts = LoopFacts(
            "closure", calls, loops[0], scope, closure_fn=fn, closure_step_stmt=step_stmt
        )
    else:
        scope = ix.scope_of(first)
        loops = ix.loops_between(first, scope)
        step_inline = None
        if not loops and isinstance(scope, cst.FunctionDef):
            # a step function: backward() runs once per call; follow it to its loop
            sites = [c for c in ix.calls_to(scope) if ix.loops_between(c, ix.scope_of(c))]
            if len(sites) != 1:
                raise Refusal(
                    f"{scope.name.value}() calls backward() but is called from "
                    f"{len(sites)} loops; cannot tell which one trains",
                    line,
                )
            site = sites[0]
            step_inline = Inline(scope, site, bind_call(scope, site, parsed.line(site)))
            scope = ix.scope_of(site)
            loops = ix.loops_between(site, scope)
        if not loops:
            raise Refusal("backward() is not called inside a loop", line)
        loop = loops[0]
        kind = "loader" if _loader_iter(loop) is not None else "steps"
        facts = LoopFacts(kind, calls, loop, scope, step_inline=step_inline)

    for other in calls[1:]:
        if (
            ix.loops_between(other, ix.scope_of(other))[:1] != [facts.batch_loop]
            and not (facts.step_inline and ix.scope_of(other) is facts.step_inline.fn)
            and not (
                facts.closure_fn and ix.enclosing(other, (cst.FunctionDef,)) is facts.closure_fn
            )
        ):
            raise Refusal(
                f"two training loops (backward() at lines {line} and {parsed.line(other)}); "
                "cannot tell which one to convert",
                parsed.line(other),
            )

    _find_epoch_loop(parsed, ix, facts)
    return facts


def _loader_iter(loop: cst.CSTNode) -> cst.BaseExpression | None:
    """The iterable of `for batch in X` / `for i, batch in enumerate(X)`; None for step loops."""
    if not isinstance(loop, cst.For):
        return None
    it = loop.iter
    it = _unwrap_progress(it)
    if isinstance(it, cst.Call) and dotted(it.func) == "enumerate" and it.args:
        it = _unwrap_progress(it.args[0].value)
    if isinstance(it, cst.Call) and dotted(it.func) == "range":
        return None
    return it


def _unwrap_progress(it: cst.BaseExpression) -> cst.BaseExpression:
    """`tqdm(loader)`, `track(loader)`, `iter(loader)` -> `loader`."""
    name = (dotted(it.func) or "").split(".")[-1] if isinstance(it, cst.Call) else ""
    if name in ("tqdm", "track", "iter") and it.args and it.args[0].keyword is None:
        return it.args[0].value
    return it


def loader_parts(loop: cst.For) -> tuple[cst.BaseExpression, cst.BaseExpression, str | None]:
    """(iterable, batch target, index variable) of a loader loop."""
    it = _unwrap_progress(loop.iter)
    target, index = loop.target, None
    if isinstance(it, cst.Call) and dotted(it.func) == "enumerate" and it.args:
        if isinstance(target, cst.Tuple) and len(target.elements) == 2:
            idx = target.elements[0].value
            index = idx.value if isinstance(idx, cst.Name) else None
            target = target.elements[1].value
        it = _unwrap_progress(it.args[0].value)
    return it, target, index


def enumerate_start(loop: cst.For) -> cst.BaseExpression | None:
    """`start` of `for i, batch in enumerate(loader, start)`: None when it counts from 0."""
    it = _unwrap_progress(loop.iter)
    if not (isinstance(it, cst.Call) and dotted(it.func) == "enumerate"):
        return None
    for i, a in enumerate(it.args):
        if (a.keyword is None and i == 1) or (a.keyword and a.keyword.value == "start"):
            if isinstance(a.value, cst.Integer) and int(a.value.value, 0) == 0:
                return None
            return a.value
    return None


def _find_epoch_loop(parsed: Parsed, ix: Index, facts: LoopFacts) -> None:
    scope = facts.batch_scope
    outer = ix.loops_between(facts.batch_loop, scope)
    if facts.kind in ("steps",) or (
        facts.kind == "closure" and _loader_iter(facts.batch_loop) is None
    ):
        if outer:
            raise Refusal(
                "a step loop nested inside another loop is not supported", parsed.line(outer[0])
            )
        facts.driver = scope
        return
    if outer:
        facts.epoch_loop = outer[0]
        facts.driver = scope
        return
    if isinstance(scope, cst.FunctionDef):
        sites = [c for c in ix.calls_to(scope) if ix.loops_between(c, ix.scope_of(c))]
        if len(sites) > 1:
            # several calls in loops (train and eval share one function): the one that
            # passes an optimizer is the training call
            sites = [c for c in sites if _passes_optimizer(ix, c)] or sites
        if len(sites) == 1:
            site = sites[0]
            outer_scope = ix.scope_of(site)
            facts.epoch_loop = ix.loops_between(site, outer_scope)[0]
            facts.epoch_inline = Inline(scope, site, bind_call(scope, site, parsed.line(site)))
            facts.driver = outer_scope
            return
        if len(sites) > 1:
            raise Refusal(
                f"{scope.name.value}() is called from {len(sites)} loops; cannot tell which trains",
                parsed.line(sites[0]),
            )
        direct = ix.calls_to(scope)
        if len(direct) == 1:
            # a train function without an epoch loop around it: one pass over the data
            facts.epoch_inline = Inline(
                scope, direct[0], bind_call(scope, direct[0], parsed.line(direct[0]))
            )
            facts.driver = ix.scope_of(direct[0])
            return
    facts.driver = scope


def _passes_optimizer(ix: Index, call: cst.Call) -> bool:
    for a in call.args:
        d = dotted(a.value)
        if d and d.rsplit(".", 1)[-1] in ix.optim_targets:
            return True
        if isinstance(a.value, cst.Name) and "optim" in a.value.value:
            return True
    return False


__all__ = [
    "Index",
    "Inline",
    "LoopFacts",
    "Refusal",
    "bind_call",
    "code",
    "enumerate_start",
    "find_loop",
    "loader_parts",
]
