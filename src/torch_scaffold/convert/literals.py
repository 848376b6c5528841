"""Integer literals the loop's bounds are spelled with: `range(start_epoch, ...)` where the
driver binds `start_epoch = 1` once."""

from __future__ import annotations

import libcst as cst


def literal_start(parsed, ix, loop, node) -> int | None:
    """The value of a loop's start bound, ignoring the resume block (which the conversion
    removes: its `start_epoch = ckpt["epoch"]` is Lightning's business then)."""
    from torch_scaffold.convert.rules.resume import resume_block

    found = resume_block(parsed, ix, loop.driver, loop.epoch_loop or loop.batch_loop)
    return literal_int(parsed, loop, node, found[0] if found else None)


def literal_int(parsed, facts, node, ignore=None) -> int | None:
    """The value of `1`, or of a name the driver binds exactly once, to a literal, outside
    `ignore` (the resume block, which the conversion removes): `start_epoch = 1`."""
    if node is None:
        return 0
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    if not (isinstance(node, cst.Name) and facts is not None and facts.driver is not None):
        return None
    from torch_scaffold.convert.nodes import walk
    from torch_scaffold.convert.scope import statement_usage

    skip = set()
    if ignore is not None:
        skip = {id(n) for n in walk(ignore)}
    values = []
    for n in walk(facts.driver):
        if id(n) in skip:
            continue
        if isinstance(n, (cst.SimpleStatementLine, cst.For, cst.With, cst.FunctionDef)):
            if isinstance(n, cst.SimpleStatementLine):
                binds = statement_usage([n]).binds
            elif isinstance(n, cst.For):
                binds = set(_names(n.target))
            elif isinstance(n, cst.With):
                binds = {x for i in n.items if i.asname for x in _names(i.asname.name)}
            else:
                binds = {n.name.value} if n is not facts.driver else set()
            if node.value in binds:
                values.append(_literal_value(n, node.value))
    if len(values) == 1 and values[0] is not None:
        return values[0]
    return None


def _names(target) -> list[str]:
    from torch_scaffold.convert.scope import _target_names

    return _target_names(target)


def _literal_value(st, name: str) -> int | None:
    if not (isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1):
        return None
    a = st.body[0]
    if not (isinstance(a, cst.Assign) and len(a.targets) == 1):
        return None
    t, v = a.targets[0].target, a.value
    if isinstance(t, cst.Name) and t.value == name and isinstance(v, cst.Integer):
        return int(v.value, 0)
    if isinstance(t, cst.Tuple) and isinstance(v, cst.Tuple):
        for te, ve in zip(t.elements, v.elements):
            if (
                isinstance(te.value, cst.Name)
                and te.value.value == name
                and isinstance(ve.value, cst.Integer)
            ):
                return int(ve.value.value, 0)
    return None
