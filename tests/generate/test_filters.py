"""The template filters: spec strings become exact literals in Python, TOML, YAML, Markdown."""

import ast
import importlib.util

import pytest
import tomllib
import yaml

from torch_scaffold.generate.render import templates_root


@pytest.fixture(scope="module")
def filters():
    path = templates_root() / "_shared" / "scaffold_filters.py"
    spec = importlib.util.spec_from_file_location("filters_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VALUES = [
    "plain",
    "dq \" sq ' both",
    "back\\slash",
    "new\nline\ttab",
    "ü 模型 \u2028 \x7f",
    "{{ x }}",
    "astral 🚀 and C1 \x85 nbsp \xa0 nul \x00",
]


@pytest.mark.parametrize("value", VALUES)
def test_pyrepr_round_trips(filters, value):
    assert ast.literal_eval(filters.pyrepr(value)) == value


def test_pyrepr_prefers_double_quotes_and_handles_lists(filters):
    assert filters.pyrepr("abc") == '"abc"'
    assert filters.pyrepr(["a", 1, 2.5, None, True]) == '["a", 1, 2.5, None, True]'
    with pytest.raises(ValueError):
        filters.pyrepr(float("nan"))


@pytest.mark.parametrize("value", VALUES)
def test_toml_str_round_trips(filters, value):
    assert tomllib.loads(f"key = {filters.toml_str(value)}")["key"] == value


@pytest.mark.parametrize("value", [*VALUES, 1e-05, 3e-4, 0.1, 12, True, None, [1, 2], [0.9, 0.999]])
def test_yaml_value_round_trips(filters, value):
    loaded = yaml.safe_load(f"key: {filters.yaml_value(value)}")["key"]
    assert loaded == value and type(loaded) is type(value)


def test_md_text_is_one_literal_line(filters):
    assert filters.md_text("a\nb *c* [d](e)") == "a b \\*c\\* \\[d\\]\\(e\\)"


@pytest.mark.parametrize(
    "value", ["x" * 500, "模型" * 100, "🚀 " * 90 + "end", "q\"'\\\n" * 60, VALUES[4] * 20]
)
def test_long_strings_become_short_literals_that_round_trip(filters, value):
    """Any length of spec text stays within the generated code's line length."""
    text = filters.pyrepr(value)
    assert ast.literal_eval(text) == value
    assert text.startswith("(") and text.endswith(")")
    pieces = ast.parse(text, mode="eval")  # adjacent literals, each one short
    assert isinstance(pieces.body, ast.Constant)
    for chunk in filters._chunks(value):
        assert filters._width(filters._str_literal(chunk)) <= filters.STRING_CHUNK
