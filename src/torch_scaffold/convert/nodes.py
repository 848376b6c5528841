"""Small helpers over libcst nodes: render, dotted names, call shapes, walking."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
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


# libcst computes `.children` (and runs a visitor) by rebuilding every node it passes, which
# made walks the slowest part of a conversion. `children_of` reads the same fields directly,
# in the order libcst's own traversal visits them (learnt once per node type).
_ORDER: dict[type, tuple[str, ...]] = {}
_UNSEEN: dict[type, tuple[str, ...]] = {}  # fields a type's first instance did not visit


class _FieldOrder(cst.CSTVisitor):
    """Records which fields of `node` libcst visits, in order, without going deeper."""

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        return None

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if node is self.node and attribute not in self.fields:
            self.fields.append(attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        return None


def _learn_order(node: cst.CSTNode) -> tuple[str, ...]:
    probe = _FieldOrder(node)
    node._visit_and_replace_children(probe)
    kind = type(node)
    known = _ORDER.get(kind, ())
    order = tuple(probe.fields) + tuple(f for f in known if f not in probe.fields)
    _ORDER[kind] = order
    # a field left out because it was None here may hold nodes in another instance
    names = getattr(kind, "__dataclass_fields__", {})
    _UNSEEN[kind] = tuple(f for f in names if f not in order and getattr(node, f) is None)
    return order


# type -> 1 (a node), 2 (a sequence of nodes), 0 (anything else): a dict lookup is much
# cheaper than isinstance against libcst's abstract base class
_KIND: dict[type, int] = {tuple: 2, list: 2, type(None): 0, str: 0}


def _kind(value) -> int:
    kind = type(value)
    k = _KIND.get(kind)
    if k is None:
        k = _KIND[kind] = 1 if issubclass(kind, cst.CSTNode) else 0
    return k


def children_of(node: cst.CSTNode) -> list[cst.CSTNode]:
    """`node.children` (same nodes, same order), without rebuilding `node`."""
    kind = type(node)
    order = _ORDER.get(kind)
    if order is None:
        order = _learn_order(node)
    unseen = _UNSEEN[kind]
    if unseen and any(getattr(node, f) is not None for f in unseen):
        order = _learn_order(node)  # `f"{x:{spec}}"`: format_spec is visited only when set
    out: list[cst.CSTNode] = []
    for name in order:
        value = getattr(node, name)
        k = _KIND.get(type(value))
        if k is None:
            k = _kind(value)
        if k == 1:
            out.append(value)
        elif k == 2:
            out.extend(value)
    return out


class TreeIndex:
    """The parsed tree in depth-first order: a node's subtree is one slice of `nodes`."""

    def __init__(self, root: cst.CSTNode) -> None:
        order: list[cst.CSTNode] = []
        parent_of: list[int] = []
        end: list[int] = []
        pos: dict[int, int] = {}
        by_type: defaultdict[type, list[int]] = defaultdict(list)
        stack: list[tuple[cst.CSTNode, int]] = [(root, -1)]
        open_: list[int] = []  # indices whose subtree is still being listed
        while stack:
            node, parent = stack.pop()
            i = len(order)
            # close the subtrees this node is not part of
            while open_ and open_[-1] != parent:
                end[open_.pop()] = i
            order.append(node)
            parent_of.append(parent)
            end.append(0)
            pos[id(node)] = i
            by_type[type(node)].append(i)
            open_.append(i)
            kids = children_of(node)
            for kid in reversed(kids):
                stack.append((kid, i))
        n = len(order)
        while open_:
            end[open_.pop()] = n
        self.nodes = order
        self.parent_of = parent_of
        self.end = end
        self.pos = pos
        self.by_type = dict(by_type)
        # facts derived from one unchanged node (it never changes), computed once: the
        # names an expression reads (scope.expr_reads), asked again by several passes
        self.reads: dict[int, list[str]] = {}

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        i = self.pos.get(id(node))
        if i is None:
            return None
        p = self.parent_of[i]
        return self.nodes[p] if p >= 0 else None

    def subtree(self, node: cst.CSTNode) -> list[cst.CSTNode] | None:
        i = self.pos.get(id(node))
        if i is None:
            return None
        return self.nodes[i : self.end[i]]

    def of_type(self, *kinds: type, within: cst.CSTNode | None = None) -> list[cst.CSTNode]:
        """The nodes whose type is exactly one of `kinds` (libcst's concrete classes), in
        depth-first order; only those inside `within` (a node of this tree) when given."""
        lists = [self.by_type.get(k, ()) for k in kinds]
        if within is None:
            lo, hi = 0, len(self.nodes)
        else:
            lo = self.pos.get(id(within))
            if lo is None:  # not a node of this tree (built by a rule): look through it
                return [n for n in walk(within) if type(n) in kinds]
            hi = self.end[lo]
        picked: list[int] = []
        for indices in lists:
            picked += indices[bisect_left(indices, lo) : bisect_left(indices, hi)]
        if len(lists) > 1:
            picked.sort()
        nodes = self.nodes
        return [nodes[i] for i in picked]


# The tree being converted: walks over its nodes are slices. It holds the nodes, so an id
# in it always names a live node of that tree; `release_index` frees it after a conversion.
_INDEX: TreeIndex | None = None


def set_index(index: TreeIndex | None) -> None:
    global _INDEX
    _INDEX = index


def visit(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """`node.visit(visitor)` for a read-only CSTVisitor, without rebuilding every node on the
    way (libcst's own traversal does, which made scope analysis cost milliseconds a line):
    the same visit_*/leave_* calls in the same order. Attribute hooks (visit_Call_func) are
    not called: no visitor of the converter has one."""
    stack: list[tuple[cst.CSTNode, bool]] = [(node, False)]
    while stack:
        current, leaving = stack.pop()
        if leaving:
            visitor.on_leave(current)
            continue
        stack.append((current, True))
        if visitor.on_visit(current):
            stack.extend((kid, False) for kid in reversed(children_of(current)))


def current_index() -> TreeIndex | None:
    return _INDEX


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node below (and including) `node`, depth first (libcst's order)."""
    index = _INDEX
    if index is not None:
        i = index.pos.get(id(node))
        if i is not None:
            yield from index.nodes[i : index.end[i]]
            return
    stack = [node]
    while stack:
        current = stack.pop()
        if index is not None:
            i = index.pos.get(id(current))
            if i is not None:  # an unchanged part of the parsed tree
                yield from index.nodes[i : index.end[i]]
                continue
        yield current
        stack.extend(reversed(children_of(current)))


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


def unchanged(node: cst.CSTNode) -> bool:
    """Whether `node` is a node of the parsed tree, as parsed (no rule rebuilt it)."""
    return _INDEX is not None and id(node) in _INDEX.pos


def holds(node: cst.CSTNode, *kinds: type) -> bool:
    """Whether `node` holds a node of one of `kinds` (libcst's concrete classes)."""
    if unchanged(node):
        return bool(_INDEX.of_type(*kinds, within=node))
    return any(type(n) in kinds for n in walk(node))


def mentions(node: cst.CSTNode, names) -> bool:
    """Whether a Name under `node` spells one of `names`. A transformer that only touches
    those names skips the subtrees that have none: libcst would rebuild them node by node."""
    if unchanged(node):
        return any(n.value in names for n in _INDEX.of_type(cst.Name, within=node))
    return any(type(n) is cst.Name and n.value in names for n in walk(node))
