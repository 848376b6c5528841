"""The converter's shape: one ordered list of passes over one typed state.

A new pattern is a module in rules/ with `run(ctx)` and an entry in pipeline.PASSES; these
tests hold the pipeline to that contract.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from torch_scaffold.convert import convert_source, pipeline, rules
from torch_scaffold.convert.plan import Context, Facts, Plan

from .conftest import FIXTURES

CASE = FIXTURES / "amp" / "autocast_scaler.in.py"
CONVERT = Path(pipeline.__file__).parent


def _name(rule) -> str:
    return rule.__name__.rsplit(".", 1)[-1]


def test_the_pipeline_runs_passes_in_order_and_a_new_pass_is_one_entry(monkeypatch):
    ran: list[str] = []
    seen: dict = {}

    def recording(rule):
        def run(ctx):
            ran.append(_name(rule))
            rule.run(ctx)

        return SimpleNamespace(run=run)

    def marker(ctx):  # what a new rule would be: a `run(ctx)` at the end of the list
        ran.append("marker")
        seen["facts"], seen["plan"], seen["roles"] = ctx.facts, ctx.plan, ctx.plan.roles
        ctx.plan.todos.append("a pass added at test time")

    expected = [_name(p) for p in pipeline.PASSES] + ["marker"]
    passes = tuple(recording(p) for p in pipeline.PASSES) + (SimpleNamespace(run=marker),)
    monkeypatch.setattr(pipeline, "PASSES", passes)
    result = convert_source(CASE.read_text(), "t.py")

    assert ran == expected
    assert isinstance(seen["facts"], Facts) and isinstance(seen["plan"], Plan)
    assert seen["roles"] is not None and seen["roles"].scalers  # earlier passes filled it
    assert "# TODO(scaffold): a pass added at test time" in result.code


def test_every_pass_has_one_signature_and_every_rule_with_run_is_listed():
    for rule in pipeline.PASSES:
        params = list(inspect.signature(rule.run).parameters)
        assert params == ["ctx"], (_name(rule), params)
    listed = {rule.__name__ for rule in pipeline.PASSES}
    for info in pkgutil.iter_modules(rules.__path__):
        module = importlib.import_module(f"{rules.__name__}.{info.name}")
        if hasattr(module, "run"):
            assert module.__name__ in listed, f"rules/{info.name}.py has run() but is no pass"


def _context() -> Context:
    facts = Facts(None, None, None, None, None, frozenset())
    return Context(facts, Plan(kind="loader"))


def test_context_and_plan_reject_undeclared_attributes():
    ctx = _context()
    with pytest.raises(AttributeError):
        ctx.bolted_on = 1
    with pytest.raises(AttributeError):
        ctx.plan.bolted_on = 1


def test_facts_are_frozen():
    ctx = _context()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.facts.partial = True


def test_no_module_assigns_attributes_to_the_context():
    """Passes write ctx.plan.<field>; `ctx.<name> = ...` would bypass the declared state."""
    offenders = []
    for path in sorted(CONVERT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for t in targets:
                for el in t.elts if isinstance(t, ast.Tuple) else [t]:
                    if (
                        isinstance(el, ast.Attribute)
                        and isinstance(el.value, ast.Name)
                        and el.value.id == "ctx"
                    ):
                        offenders.append(f"{path.name}:{node.lineno} ctx.{el.attr}")
    assert offenders == []


def test_every_plan_field_has_a_type_and_a_default_but_kind():
    for f in dataclasses.fields(Plan):
        assert f.type, f.name
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        assert missing == (f.name == "kind"), f.name
