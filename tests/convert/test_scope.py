"""Name usage facts that decide what becomes `self.<name>` in the generated module."""

import libcst as cst

from torch_scaffold.convert.scope import rename, statement_usage


def usage(src):
    return statement_usage(list(cst.parse_module(src).body))


def test_augmented_assignment_reads_before_it_binds():
    u = usage("running += loss.item()\n")
    assert "running" in u.read_first and "running" in u.binds


def test_bound_then_read_is_not_read_first():
    u = usage("x = 1\ny = x + 1\n")
    assert u.read_first == set() and u.binds == {"x", "y"}


def test_each_if_branch_starts_from_the_names_bound_before_it():
    u = usage("if ok:\n    bad = 0\nelse:\n    bad += 1\n")
    assert "bad" in u.read_first


def test_comprehension_and_lambda_variables_are_not_free():
    u = usage("total = sum(v for k, v in d.items())\nf = lambda q: q + w\n")
    assert u.read_first == {"sum", "d", "w"}


def test_rename_skips_attributes_keywords_and_shadowing_scopes():
    mod = cst.parse_module("y = model(x, model=1) + obj.model + [model for model in ms]\n")
    out = rename(mod, {"model": cst.parse_expression("self.model")}).code
    assert out == "y = self.model(x, model=1) + obj.model + [model for model in ms]\n"


def _bodies(module: cst.Module):
    """The module's statements, and every function's and block's statements in it."""
    yield list(module.body)
    for node in _walk(module):
        body = getattr(node, "body", None)
        if isinstance(body, cst.IndentedBlock):
            yield list(body.body)


def _walk(node):
    for child in node.children:
        yield child
        yield from _walk(child)


def test_bound_names_are_statement_usage_binds_on_every_fixture_body():
    """bound_names is the cheap form of statement_usage(...).binds: the same names on every
    statement list of every fixture script (and the examples)."""
    from torch_scaffold.convert.scope import bound_names

    from .conftest import FIXTURES, REPO

    paths = sorted(FIXTURES.glob("*/*.in.py")) + sorted(
        (REPO / "examples" / "scripts").glob("*.py")
    )
    compared = 0
    for path in paths:
        for stmts in _bodies(cst.parse_module(path.read_text())):
            for one in ([s] for s in stmts):
                assert bound_names(one) == statement_usage(one).binds, (path, cst.Module(one).code)
                compared += 1
    assert compared > 1500, compared
