"""The parsed tree's machinery that makes a conversion linear: `children_of` (libcst's
children without rebuilding nodes), the depth-first TreeIndex (parents, subtree slices,
nodes by type) and parsing in pieces (chunks.py). Each must give exactly what libcst's own
slow path gives, on every fixture script."""

from __future__ import annotations

import gc

import libcst as cst
import pytest

from torch_scaffold.convert import chunks, lines, nodes
from torch_scaffold.convert.parse import parse

from .conftest import FIXTURES

INPUTS = sorted(FIXTURES.glob("*/*.in.py"))


def reference_walk(node):
    """Depth first with libcst's own `.children`."""
    stack, out = [node], []
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out


@pytest.fixture(scope="module")
def trees():
    return [(path.name, cst.parse_module(path.read_text())) for path in INPUTS]


def test_children_of_is_libcst_children(trees):
    checked = 0
    for name, module in trees:
        for node in reference_walk(module):
            mine, theirs = nodes.children_of(node), list(node.children)
            assert len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs)), (
                name,
                type(node).__name__,
            )
            checked += 1
    assert checked > 10_000


def test_optional_fields_learnt_later():
    """`f"{x:{w}}"`: a format spec is visited only when there is one; an earlier f-string
    without one must not hide it."""
    module = cst.parse_module('a = f"{x}"\nb = f"{x:{w}.2f}"\n')
    for node in reference_walk(module):
        assert nodes.children_of(node) == list(node.children)


def test_index_parents_slices_and_types(trees):
    for name, module in trees[:40]:
        index = nodes.TreeIndex(module)
        order = reference_walk(module)
        assert len(index.nodes) == len(order) and all(a is b for a, b in zip(index.nodes, order))
        assert index.parent(module) is None
        for node in order:
            for child in node.children:
                assert index.parent(child) is node, name
        for node in order[:: max(1, len(order) // 50)]:
            sub = index.subtree(node)
            assert [id(n) for n in sub] == [id(n) for n in reference_walk(node)], name
            calls = [n for n in reference_walk(node) if isinstance(n, cst.Call)]
            assert index.of_type(cst.Call, within=node) == calls
        wanted = [n for n in order if isinstance(n, (cst.Name, cst.For))]
        assert index.of_type(cst.Name, cst.For) == wanted


def test_walk_of_new_nodes_reaches_the_parsed_parts():
    parsed = parse("x = f(a, b)\ny = 2\n", "t.py")
    old = parsed.module.body[0]
    new = cst.Module(body=[old.with_changes(leading_lines=[cst.EmptyLine()])])
    assert [id(n) for n in nodes.walk(new)] == [id(n) for n in reference_walk(new)]


def test_pieces_join_into_the_tree_of_one_parse():
    joined = 0
    for path in INPUTS:
        source = path.read_text()
        whole = cst.parse_module(source)
        for every in (3, 10):
            result = chunks.parse_in_pieces(source, every)
            if result is None:
                continue
            module, pieces = result
            joined += 1
            assert module.code == source
            assert module.deep_equals(whole), path.name
            expected = lines.statement_lines(whole, source)
            got = lines.statement_lines(module, source, pieces)
            a, b = nodes.TreeIndex(whole).nodes, nodes.TreeIndex(module).nodes
            assert [expected.get(id(n)) for n in a] == [got.get(id(n)) for n in b], path.name
    assert joined > 50


def test_a_cut_inside_a_string_or_brackets_parses_whole():
    doc = 'TEXT = """\nintro\n\nx = 1\n"""\n'
    call = "CALL = f(\n    1,\n\n2)\n"
    for trap in (doc, call):
        source = "a = 1\n\n" * 4 + trap + "b = 2\n\n" * 4
        lines_of = source.split("\n")
        trapped = lines_of.index("x = 1" if trap is doc else "2)")
        assert trapped in chunks._cuts(lines_of, 2)  # a cut inside: the piece before fails
        assert chunks.parse_in_pieces(source, 2) is None
        assert parse(source, "t.py").module.code == source


def test_pieces_with_different_indentation_parse_whole():
    two = "def f():\n  return 1\n\n"
    four = "def g():\n    return 2\n\n"
    assert chunks.parse_in_pieces(two * 6, 3) is not None
    assert chunks.parse_in_pieces(two * 3 + four * 3, 3) is None


def test_conversion_releases_the_index_and_restores_gc():
    from torch_scaffold.convert import convert_source

    source = (FIXTURES / "loops" / "inline_module.in.py").read_text()
    assert gc.isenabled()
    convert_source(source, "t.py")
    assert gc.isenabled()
    assert nodes.current_index() is None  # the tree is not kept alive after a conversion
    gc.disable()
    try:
        convert_source(source, "t.py")
        assert not gc.isenabled()  # a caller's choice is left as it was
    finally:
        gc.enable()


def test_untouched_statements_stay_the_parsed_nodes():
    """Rules skip the subtrees they would not change (libcst rebuilds every node it visits):
    moved code keeps its nodes, so later passes still find them in the index."""
    from torch_scaffold.convert import precedence
    from torch_scaffold.convert.scope import expr_reads, rename

    parsed = parse("x = a + b\ny = self.c\n", "t.py")
    try:
        plain, with_self = parsed.module.body
        host = {"self": cst.Name("__host__")}
        assert rename(plain, host) is plain
        assert rename(with_self, host) is not with_self
        assert precedence.fix(plain) is plain
        value = plain.body[0].value
        assert expr_reads(value) == ["a", "b"] == expr_reads(value)  # the second from memo
    finally:
        nodes.set_index(None)
