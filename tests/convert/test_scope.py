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
