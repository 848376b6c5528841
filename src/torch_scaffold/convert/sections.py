"""Cut the training loop into the pieces that become Lightning hooks.

Functions called from the loop are inlined with their parameters bound to the
call's arguments, so every piece is expressed in the names of the scope that
drives training. Statement nodes are moved as they are (comments included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from torch_scaffold.convert.analyze import (
    Index,
    Inline,
    LoopFacts,
    Refusal,
    enumerate_start,
    loader_parts,
)
from torch_scaffold.convert.nodes import body_of, contains, dotted, expr, walk
from torch_scaffold.convert.scope import rename, statement_usage


@dataclass
class RawSections:
    loop_body: list[cst.BaseStatement]
    epoch_pre: list[cst.BaseStatement] = field(default_factory=list)
    epoch_post: list[cst.BaseStatement] = field(default_factory=list)
    batch_target: cst.BaseExpression | None = None
    index_var: str | None = None
    index_offset: cst.BaseExpression | None = None
    train_data: cst.BaseExpression | None = None  # driver-scope expression
    epoch_var: str | None = None
    epoch_start: cst.BaseExpression | None = None
    max_epochs: cst.BaseExpression | None = None
    max_steps: cst.BaseExpression | None = None
    replaced: cst.CSTNode | None = None  # driver statement the Trainer call replaces
    inlined: list[cst.FunctionDef] = field(default_factory=list)
    closure_target: cst.BaseExpression | None = None  # `loss = optimizer.step(closure)`
    closure_tail: list[cst.BaseStatement] = field(default_factory=list)
    stripped_withs: list[cst.With] = field(default_factory=list)
    counter: str | None = None  # `while step < N` counter
    fetched: bool = False  # train_data is the iterator the loop calls next() on


def _split(stmts: list, node: cst.CSTNode):
    for i, st in enumerate(stmts):
        if st is node or contains(st, node):
            return stmts[:i], st, stmts[i + 1 :]
    raise Refusal(f"internal: statement not found: {_code(node)[:60]}")


def _unwrap_to(container_body: list, node: cst.CSTNode, withs: list):
    """Split a body at the statement holding node, unwrapping `with` blocks around it."""
    before, holder, after = _split(container_body, node)
    while holder is not node and isinstance(holder, cst.With):
        withs.append(holder)
        b2, holder, a2 = _split(body_of(holder), node)
        before, after = before + b2, a2 + after
    return before, holder, after


def _bind(fn: cst.FunctionDef, bindings: dict, stmts: list) -> list:
    """Substitute parameters by the caller's argument expressions."""
    rebound = statement_usage(stmts).binds
    mapping: dict[str, cst.BaseExpression] = {}
    prefix = []
    for name, value in bindings.items():
        if isinstance(value, cst.Name):
            if value.value != name:
                mapping[name] = value
        elif name in rebound:
            prefix.append(
                cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])
            )
        else:
            mapping[name] = value
    out = [rename(s, mapping) for s in stmts]
    return prefix + out


def _mapping(bindings: dict) -> dict:
    return {k: v for k, v in bindings.items() if not (isinstance(v, cst.Name) and v.value == k)}


def _drop_docstring(stmts: list) -> list:
    if (
        stmts
        and isinstance(stmts[0], cst.SimpleStatementLine)
        and isinstance(stmts[0].body[0], cst.Expr)
        and isinstance(stmts[0].body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    ):
        return stmts[1:]
    return stmts


def _returns_to(stmts: list, target: cst.BaseExpression | None, fn_name: str, line) -> list:
    """Turn the function's final `return X` into `target = X` (or drop it)."""
    out = list(stmts)
    for st in out[:-1]:
        if isinstance(st, cst.FunctionDef):
            continue  # a nested function's return is its own
        if any(isinstance(n, cst.Return) for n in walk(st)):
            raise Refusal(f"{fn_name}() returns from the middle of its training loop code", line)
    if (
        out
        and isinstance(out[-1], cst.SimpleStatementLine)
        and isinstance(out[-1].body[0], cst.Return)
    ):
        ret = out[-1].body[0]
        if ret.value is None or target is None:
            out = out[:-1]
        else:
            out[-1] = out[-1].with_changes(body=[cst.Assign([cst.AssignTarget(target)], ret.value)])
    elif out and any(isinstance(n, cst.Return) for n in walk(out[-1])):
        raise Refusal(f"{fn_name}() returns from inside a block", line)
    return out


def _site_parts(site_stmt: cst.CSTNode, call: cst.Call, fn_name: str):
    """How the call's result is used: (target for the return value, statement to keep after)."""
    if isinstance(site_stmt, cst.SimpleStatementLine) and len(site_stmt.body) == 1:
        small = site_stmt.body[0]
        if isinstance(small, cst.Expr) and small.value is call:
            return None, None
        if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
            return small.targets[0].target, None
    temp = cst.Name(f"{fn_name.lstrip('_')}_out")
    return temp, site_stmt.deep_replace(call, temp)


def _inline(inl: Inline, site_stmt, parsed, marker=None, withs=None):
    """(pre, marker_stmt, post) of an inlined function body, bound to the caller."""
    fn = inl.fn
    body = _drop_docstring(body_of(fn))
    line = parsed.line(inl.call)
    target, keep = _site_parts(site_stmt, inl.call, fn.name.value)
    if marker is None:
        body = _returns_to(body, target, fn.name.value, line)
        body = _bind(fn, inl.bindings, body)
        return body + ([keep] if keep is not None else []), None, []
    pre, holder, post = _unwrap_to(body, marker, withs if withs is not None else [])
    post = _returns_to(post, target, fn.name.value, line)
    pre = _bind(fn, inl.bindings, pre)
    post = _bind(fn, inl.bindings, post)
    return pre, holder, post + ([keep] if keep is not None else [])


def _range_bounds(it: cst.BaseExpression):
    it = (
        it.args[0].value
        if isinstance(it, cst.Call) and (dotted(it.func) or "").endswith("tqdm") and it.args
        else it
    )
    if isinstance(it, cst.Call) and dotted(it.func) in ("range", "trange", "tqdm.trange"):
        args = [a.value for a in it.args if a.keyword is None]
        if len(args) == 1:
            return cst.Integer("0"), args[0]
        if len(args) == 2:
            return args[0], args[1]
    return None


def _count(
    start: cst.BaseExpression, stop: cst.BaseExpression, literal_start
) -> cst.BaseExpression:
    """stop - start, simplified for the usual `range(1, n + 1)` shape (precedence kept)."""
    from torch_scaffold.convert.precedence import fix

    start_v = literal_start(start)
    if start_v == 0:
        return stop
    if (
        isinstance(stop, cst.BinaryOperation)
        and isinstance(stop.operator, cst.Add)
        and isinstance(stop.right, cst.Integer)
        and start_v is not None
        and int(stop.right.value) == start_v
        and not stop.lpar
    ):
        return stop.left
    if (
        isinstance(stop, cst.BinaryOperation)
        and isinstance(stop.operator, cst.Add)
        and not stop.lpar
        and _code(stop.left) == _code(start)
    ):
        return stop.right  # range(start, start + n)
    if isinstance(stop, cst.Integer) and start_v is not None:
        return cst.Integer(str(int(stop.value, 0) - start_v))
    right = cst.Integer(str(start_v)) if start_v is not None else start
    return fix(cst.BinaryOperation(left=stop, operator=cst.Subtract(), right=right))


def _code(node) -> str:
    return cst.Module([]).code_for_node(node)


def build(parsed, ix: Index, facts: LoopFacts) -> RawSections:
    from torch_scaffold.convert.literals import literal_start as literal

    def literal_start(node):
        return literal(parsed, ix, facts, node)

    loop = facts.batch_loop
    withs: list = []
    # ---------------------------------------------------------------- one iteration
    if facts.kind == "closure":
        body = body_of(loop)
        step_at = next(
            (
                i
                for i, s in enumerate(body)
                if s is facts.closure_step_stmt or contains(s, facts.closure_step_stmt)
            ),
            None,
        )
        if step_at is None or body[step_at] is not facts.closure_step_stmt:
            raise Refusal(
                "optimizer.step(closure) sits inside a block of the loop body; only a step "
                "at the top level of the loop body is supported",
                parsed.line(facts.closure_step_stmt),
            )
        fn = facts.closure_fn
        params = fn.params
        if (
            params.params
            or params.posonly_params
            or params.kwonly_params
            or isinstance(params.star_arg, cst.Param)
            or params.star_kwarg is not None
        ):
            raise Refusal(
                f"the closure {fn.name.value}() takes arguments; optimizer.step calls it with none",
                parsed.line(fn),
            )
        # defined in the loop body (each step a new closure) or once, outside the loop
        head = [s for s in body[:step_at] if s is not fn]
        if not any(s is fn for s in body):
            others = [
                n
                for n in walk(parsed.module)
                if isinstance(n, cst.Name)
                and n.value == fn.name.value
                and not contains(facts.closure_step_stmt, n)
                and n is not fn.name
            ]
            if not others:
                raw_inlined_closure = fn
            else:
                raw_inlined_closure = None
        else:
            raw_inlined_closure = None
        closure_body = [
            s
            for s in body_of(facts.closure_fn)
            if not (isinstance(s, cst.SimpleStatementLine) and isinstance(s.body[0], cst.Nonlocal))
        ]
        closure_body = _returns_to(
            closure_body,
            cst.Name("__closure_loss__"),
            facts.closure_fn.name.value,
            parsed.line(facts.closure_fn),
        )
        loop_body = head + closure_body
        step_small = facts.closure_step_stmt.body[0]
        raw = RawSections(loop_body=loop_body)
        if isinstance(step_small, cst.Assign):
            raw.closure_target = step_small.targets[0].target
        raw.closure_tail = body[step_at + 1 :]
        if raw_inlined_closure is not None:
            raw.inlined.append(raw_inlined_closure)
    else:
        loop_body = list(body_of(loop))
        raw = RawSections(loop_body=loop_body)
        if facts.step_inline is not None:
            inl = facts.step_inline
            pre, site_stmt, post = _split(loop_body, inl.call)
            inlined, _, _ = _inline(inl, site_stmt, parsed)
            raw.loop_body = pre + inlined + post
            raw.inlined.append(inl.fn)

    # ---------------------------------------------------------------- the batches
    if isinstance(loop, cst.For) and facts.kind in ("loader", "closure") and _is_loader(loop):
        data, target, index = loader_parts(loop)
        raw.train_data, raw.batch_target, raw.index_var = data, target, index
        start = enumerate_start(loop)
        if index is not None and start is not None and literal_start(start) != 0:
            raw.index_offset = start  # enumerate(loader, 1): the index is batch_idx + 1
    elif isinstance(loop, cst.For):
        bounds = _range_bounds(loop.iter)
        if bounds is None:
            raise Refusal("cannot tell how many steps the loop runs", parsed.line(loop))
        start, stop = bounds
        raw.max_steps = _count(start, stop, literal_start)
        if isinstance(loop.target, cst.Name):
            raw.index_var = loop.target.value
            if literal_start(start) != 0:
                raw.index_offset = start
    else:  # while
        raw.max_steps, raw.counter = _while_limit(loop, parsed)
    if raw.train_data is None:
        _find_fetch(raw)

    # ---------------------------------------------------------------- epochs
    if facts.epoch_loop is not None:
        e = facts.epoch_loop
        if not isinstance(e, cst.For):
            raise Refusal("an epoch loop written as `while` is not supported yet", parsed.line(e))
        bounds = _range_bounds(e.iter)
        if bounds is None:
            raise Refusal("cannot tell how many epochs the loop runs", parsed.line(e))
        start, stop = bounds
        raw.epoch_start = start
        raw.max_epochs = _count(start, stop, literal_start)
        if isinstance(e.target, cst.Name):
            raw.epoch_var = e.target.value
        e_body = body_of(e)
        if facts.epoch_inline is not None:
            inl = facts.epoch_inline
            before, site_stmt, after = _unwrap_to(e_body, inl.call, withs)
            pre, _, post = _inline(inl, site_stmt, parsed, marker=loop, withs=withs)
            # the batch loop itself lives in the inlined function: speak the caller's names
            mapping = _mapping(inl.bindings)
            raw.loop_body = [rename(s, mapping) for s in raw.loop_body]
            raw.closure_tail = [rename(s, mapping) for s in raw.closure_tail]
            if raw.train_data is not None:
                raw.train_data = rename(raw.train_data, mapping)
            if raw.closure_target is not None:
                raw.closure_target = rename(raw.closure_target, mapping)
            raw.epoch_pre = before + pre
            raw.epoch_post = post + after
            raw.inlined.append(inl.fn)
        else:
            before, _, after = _unwrap_to(e_body, loop, withs)
            raw.epoch_pre, raw.epoch_post = before, after
        raw.replaced = e
    elif facts.epoch_inline is not None:
        inl = facts.epoch_inline
        raise Refusal(
            "a training function called once, outside any epoch loop, is not supported yet",
            parsed.line(inl.call),
        )
    else:
        raw.replaced = loop
    raw.stripped_withs = withs
    return raw


def _is_loader(loop: cst.For) -> bool:
    from torch_scaffold.convert.analyze import _loader_iter

    return _loader_iter(loop) is not None


def _while_limit(loop: cst.While, parsed):
    test = loop.test
    if isinstance(test, cst.Name) and test.value == "True":
        return expr("-1"), None  # runs until a `break`: self.trainer.should_stop
    if (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.left, cst.Name)
    ):
        op = test.comparisons[0].operator
        bound = test.comparisons[0].comparator
        if isinstance(op, cst.LessThan):
            return bound, test.left.value
        if isinstance(op, cst.LessThanEqual):
            return expr(f"{_code(bound)} + 1"), test.left.value
    raise Refusal(
        "cannot tell how many steps the `while` loop runs (expected `while step < N`)",
        parsed.line(loop),
    )


def _find_fetch(raw: RawSections) -> None:
    """`x, y = next(it)` fetches the batch: Lightning feeds `it` instead."""
    for i, st in enumerate(raw.loop_body):
        if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assign):
            value = st.body[0].value
            if (
                isinstance(value, cst.Call)
                and dotted(value.func) == "next"
                and len(value.args) == 1
                and isinstance(value.args[0].value, cst.Name)
            ):
                raw.train_data = value.args[0].value
                raw.batch_target = st.body[0].targets[0].target
                raw.fetched = True
                raw.loop_body = raw.loop_body[:i] + raw.loop_body[i + 1 :]
                return
