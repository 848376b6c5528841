"""Keep operator precedence when expressions are substituted into other expressions.

Inlining a function binds its parameters to the caller's argument expressions: `e % n`
with `e` bound to `epoch + 1` must read `(epoch + 1) % n`, not `epoch + 1 % n`. libcst
keeps parentheses as explicit nodes, so a substituted node carries none of its own. This
pass walks emitted code and adds parentheses wherever a child binds more loosely than its
place in the parent requires. Parsed code never needs any, so running it over code that
was not substituted changes nothing.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import unchanged

# Python's precedence, loosest first (the language reference, "Operator precedence").
NAMED = 0  # x := y
LAMBDA = 1
IFEXP = 2
OR = 3
AND = 4
NOT = 5
COMPARE = 6
BITOR = 7
BITXOR = 8
BITAND = 9
SHIFT = 10
ARITH = 11  # + -
TERM = 12  # * @ / // %
UNARY = 13  # +x -x ~x
POWER = 14
AWAIT = 15
PRIMARY = 16  # x[i] x(...) x.attr
ATOM = 17

_BINARY = {
    cst.BitOr: BITOR,
    cst.BitXor: BITXOR,
    cst.BitAnd: BITAND,
    cst.LeftShift: SHIFT,
    cst.RightShift: SHIFT,
    cst.Add: ARITH,
    cst.Subtract: ARITH,
    cst.Multiply: TERM,
    cst.MatrixMultiply: TERM,
    cst.Divide: TERM,
    cst.FloorDivide: TERM,
    cst.Modulo: TERM,
    cst.Power: POWER,
}


def precedence(node: cst.CSTNode) -> int:
    if getattr(node, "lpar", None):
        return ATOM
    if isinstance(node, cst.NamedExpr):
        return NAMED
    if isinstance(node, cst.Lambda):
        return LAMBDA
    if isinstance(node, cst.IfExp):
        return IFEXP
    if isinstance(node, cst.BooleanOperation):
        return OR if isinstance(node.operator, cst.Or) else AND
    if isinstance(node, cst.UnaryOperation):
        return NOT if isinstance(node.operator, cst.Not) else UNARY
    if isinstance(node, cst.Comparison):
        return COMPARE
    if isinstance(node, cst.BinaryOperation):
        return _BINARY.get(type(node.operator), ARITH)
    if isinstance(node, cst.Await):
        return AWAIT
    if isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        return PRIMARY
    if isinstance(node, (cst.Tuple, cst.Yield, cst.StarredElement)):
        return NAMED  # a bare tuple or yield needs parentheses wherever it is an operand
    return ATOM


def paren(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _need(node, at_least: int):
    return paren(node) if precedence(node) < at_least else node


class _Fix(cst.CSTTransformer):
    def on_visit(self, node: cst.CSTNode) -> bool:
        # a subtree of the parsed tree, as parsed, has the parentheses its source had: only
        # what the rules built needs looking at (libcst would rebuild the rest node by node)
        return not unchanged(node)

    def leave_BinaryOperation(self, original, updated):
        p = _BINARY.get(type(updated.operator), ARITH)
        if p == POWER:  # right-associative; its right operand may be unary (2 ** -1)
            left, right = _need(updated.left, POWER + 1), _need(updated.right, UNARY)
        else:
            left, right = _need(updated.left, p), _need(updated.right, p + 1)
        return updated.with_changes(left=left, right=right)

    def leave_BooleanOperation(self, original, updated):
        p = OR if isinstance(updated.operator, cst.Or) else AND
        return updated.with_changes(left=_need(updated.left, p), right=_need(updated.right, p + 1))

    def leave_UnaryOperation(self, original, updated):
        p = NOT if isinstance(updated.operator, cst.Not) else UNARY
        return updated.with_changes(expression=_need(updated.expression, p))

    def leave_Comparison(self, original, updated):
        comps = [
            c.with_changes(comparator=_need(c.comparator, COMPARE + 1)) for c in updated.comparisons
        ]
        return updated.with_changes(left=_need(updated.left, COMPARE + 1), comparisons=comps)

    def leave_IfExp(self, original, updated):
        return updated.with_changes(
            test=_need(updated.test, IFEXP + 1),
            body=_need(updated.body, IFEXP + 1),
            orelse=_need(updated.orelse, IFEXP),
        )

    def leave_Attribute(self, original, updated):
        value = _need(updated.value, PRIMARY)
        if isinstance(value, cst.Integer) and not value.lpar:
            value = paren(value)  # `1.real` does not parse; `(1).real` does
        return updated.with_changes(value=value)

    def leave_Subscript(self, original, updated):
        return updated.with_changes(value=_need(updated.value, PRIMARY))

    def leave_Call(self, original, updated):
        return updated.with_changes(func=_need(updated.func, PRIMARY))

    def leave_Await(self, original, updated):
        return updated.with_changes(expression=_need(updated.expression, PRIMARY))

    def leave_Arg(self, original, updated):
        if isinstance(updated.value, (cst.Tuple, cst.NamedExpr, cst.Yield)) and not updated.star:
            return updated.with_changes(value=_need(updated.value, IFEXP))
        return updated

    def leave_Element(self, original, updated):
        if isinstance(updated.value, (cst.Tuple, cst.NamedExpr, cst.Yield)):
            return updated.with_changes(value=_need(updated.value, IFEXP))
        return updated

    def leave_DictElement(self, original, updated):
        return updated.with_changes(
            key=_need(updated.key, IFEXP) if isinstance(updated.key, cst.Tuple) else updated.key,
            value=(
                _need(updated.value, IFEXP)
                if isinstance(updated.value, cst.Tuple)
                else updated.value
            ),
        )


def fix(node: cst.CSTNode) -> cst.CSTNode:
    """`node` with parentheses added wherever a substituted operand needs them."""
    return node.visit(_Fix())
