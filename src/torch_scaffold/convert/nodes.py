"""Small helpers over libcst nodes: render, dotted names, call shapes, walking."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

_EMPTY = cst.Module(body=[])


def code(node: cst.CSTNode) -> str:
    return _EMPTY.code_for_node(node).strip()


def dotted(expr: cst.CSTNode) -> str | None:
    """`a.b.c` for Name/Attribute chains, else None."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = dotted(expr.value)
        return f"{base}.{expr.attr.value}" if base else None
    return None


def method_call(node: cst.CSTNode) -> tuple[cst.BaseExpression, str] | None:
    """(receiver, method) for `receiver.method(...)` calls."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return node.func.value, node.func.attr.value
    return None


def call_of(stmt: cst.CSTNode) -> cst.Call | None:
    """The call of an expression statement `f(...)` / `x = f(...)`, if that is all it is."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        value = getattr(small, "value", None)
        if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) and isinstance(value, cst.Call):
            return value
    return None


# Children of the parsed tree, filled once per parse: libcst computes `.children` with a
# visitor on each access, which made repeated walks the slowest part of a conversion.
_CHILDREN: dict[int, list] = {}


def set_children_cache(children: dict[int, list]) -> None:
    _CHILDREN.clear()
    _CHILDREN.update(children)


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node below (and including) `node`, depth first, iteratively."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        kids = _CHILDREN.get(id(current))
        if kids is None:
            kids = current.children
        stack.extend(reversed(kids))


def calls_in(node: cst.CSTNode) -> Iterator[cst.Call]:
    for n in walk(node):
        if isinstance(n, cst.Call):
            yield n


def body_of(node: cst.CSTNode) -> list[cst.BaseStatement]:
    body = getattr(node, "body", None)
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        return list(body.body)
    if isinstance(body, (list, tuple)):
        return list(body)
    return []


def with_body(node: cst.CSTNode, stmts: list[cst.BaseStatement]) -> cst.CSTNode:
    body = node.body
    if isinstance(body, cst.IndentedBlock):
        return node.with_changes(body=body.with_changes(body=stmts or [pass_stmt()]))
    if isinstance(body, cst.SimpleStatementSuite):
        return node.with_changes(body=cst.IndentedBlock(body=stmts or [pass_stmt()]))
    return node.with_changes(body=stmts)


def pass_stmt() -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[cst.Pass()])


def stmt(text: str) -> cst.BaseStatement:
    return cst.parse_statement(text)


def expr(text: str) -> cst.BaseExpression:
    return cst.parse_expression(text)


def contains(node: cst.CSTNode, target: cst.CSTNode) -> bool:
    return any(n is target for n in walk(node))


def self_attr(name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name("self"), attr=cst.Name(name))
