"""Texts generated from the schema: the annotated example, the JSON Schema and docs/spec.md."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.errors import SpecError
from torch_scaffold.spec import (
    Spec,
    example_yaml,
    json_schema,
    load_spec,
    load_spec_text,
    markdown_reference,
    to_dict,
)
from torch_scaffold.spec.docs import EXAMPLE
from torch_scaffold.spec.introspect import walk
from torch_scaffold.spec.schema import TASKS

ROOT = Path(__file__).resolve().parents[2]
GOOD = Path(__file__).parent / "good_specs"
CATALOGUE = ROOT / "tests" / "bad_specs"


# --- annotated example -----------------------------------------------------------------------


def test_example_loads_back_to_exactly_the_defaults():
    assert load_spec_text(example_yaml(), "example.yaml") == Spec()


def _comment_blocks(text: str) -> dict[str, str]:
    """Dotted path of each key line -> the comment lines right above it, joined."""
    blocks, stack, comments = {}, [], []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("# "):
            comments.append(stripped[2:])
            continue
        match = re.match(r"( *)(\w+):", line)
        if match:
            depth = len(match.group(1)) // 2
            stack[depth:] = [match.group(2)]
            blocks[".".join(stack)] = " ".join(comments)
        comments = []
    return blocks


def test_example_has_a_comment_above_every_field():
    blocks = _comment_blocks(example_yaml())
    for path, info in walk(Spec):
        assert blocks.get(path, "").startswith(info.doc), path
        for choice in info.choices or ():
            assert str(choice) in blocks[path], path


def test_spec_example_command_prints_it():
    result = CliRunner().invoke(main, ["spec", "example"])
    assert result.exit_code == 0 and result.stdout == example_yaml()


# --- JSON Schema, checked with a small validator (jsonschema is not a dependency) -------------


def validate(value, schema: dict, path: str = "") -> list[str]:
    """Errors of `value` against the subset of draft 2020-12 that json_schema() emits."""
    errors = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        checks = {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "boolean": lambda v: isinstance(v, bool),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "null": lambda v: v is None,
        }
        if not any(checks[t](value) for t in types):
            return [f"{path}: type"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: enum")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append(f"{path}: exclusiveMaximum")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: pattern")
    if isinstance(value, str) and not (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 1e9)
    ):
        errors.append(f"{path}: length")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e9):
            errors.append(f"{path}: items")
        if schema.get("uniqueItems") and len(set(map(json.dumps, value))) != len(value):
            errors.append(f"{path}: uniqueItems")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        for key, item in value.items():
            if key in properties:
                errors += validate(item, properties[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key}: additional")
    return errors


def test_schema_header_and_shape():
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    lr = schema["properties"]["optimizer"]["properties"]["lr"]
    assert lr["type"] == "number" and lr["exclusiveMinimum"] == 0 and lr["default"] == 0.001
    assert schema["properties"]["optimizer"]["additionalProperties"] is False
    assert schema["properties"]["task"]["enum"] == list(TASKS)
    assert "classification" in TASKS and "regression" in TASKS  # issue 2's names stay valid
    assert all(p.get("description") for p in schema["properties"].values())


def test_schema_defaults_are_the_spec_defaults():
    schema, defaults = json_schema(), to_dict(Spec())
    for path, info in walk(Spec):
        if info.kind == "section":
            continue
        node, value = schema, defaults
        for part in path.split("."):
            node, value = node["properties"][part], value[part]
        assert node["default"] == value, path


def test_spec_schema_command_prints_valid_json():
    result = CliRunner().invoke(main, ["spec", "schema"])
    assert result.exit_code == 0 and json.loads(result.stdout) == json_schema()


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_accepts_valid_specs(path):
    assert validate(to_dict(load_spec(path)), json_schema()) == []
    # what an editor sees: YAML 1.2 reads `5e-2` as a number, PyYAML (YAML 1.1) as text
    raw = _as_yaml_12(yaml.safe_load(path.read_text()))
    assert validate(raw, json_schema()) == []


def _as_yaml_12(value):
    if isinstance(value, dict):
        return {k: _as_yaml_12(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_yaml_12(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
        return float(value)
    return value


@pytest.mark.parametrize(
    "patch",
    [
        {"optimizer": {"lr": -0.1}},
        {"optimizer": {"lr": 0}},
        {"trainer": {"max_epochs": 0}},
        {"trainer": {"max_epochs": 2.5}},
        {"data": {"batch_size": True}},
        {"model": {"hidden_sizes": []}},
        {"model": {"hidden_sizes": [64, 0]}},
        {"model": {"hiden_sizes": [64]}},
        {"optimizer": {"name": "adamm"}},
        {"optimizer": {"betas": [0.9, 1.0]}},
        {"metrics": ["accuracy", "accuracy"]},
        {"name": ""},
        {"name": 42},
        {"trainer": {"precision": 16}},
        {"extra": 1},
    ],
)
def test_schema_and_loader_both_reject_bad_values(patch):
    data = to_dict(Spec())
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section].update(value)
        else:
            data[section] = value
    assert validate(data, json_schema()) != []
    with pytest.raises(SpecError):
        load_spec_text(json.dumps(data), "patched.json")


def test_schema_rejects_what_the_catalogue_rejects_per_field():
    """Catalogue cases that parse as YAML and break one field's own rules break the schema too."""
    rejected = 0
    for path in sorted(CATALOGUE.glob("*.yaml")):
        message = path.with_suffix(".expected").read_text()
        if any(word in message for word in ("YAML", "line", "(default)", "data.path")):
            continue  # refused before parsing (aliases...) or a cross-field conflict
        try:
            data = yaml.safe_load(path.read_bytes().decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError, ValueError):
            data = None  # syntax errors, binary files: not schema territory
        if not isinstance(data, dict) or _has_nonfinite(data):
            continue
        if any(word in message for word in ("must be", "expected", "unknown field", "needs")):
            assert validate(data, json_schema()) != [], path.name
            rejected += 1
    assert rejected >= 20


def _has_nonfinite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nonfinite(v) for v in value)
    return False


# --- docs/spec.md ----------------------------------------------------------------------------


def test_committed_docs_match_the_schema():
    committed = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert (
        committed == markdown_reference()
    ), "docs/spec.md is stale: run `python -m torch_scaffold.spec.docs docs/spec.md`"


def test_docs_describe_every_field_with_its_default():
    text = markdown_reference()
    for path, info in walk(Spec):
        row = next((line for line in text.splitlines() if line.startswith(f"| `{path}` |")), None)
        assert row is not None, path
        if info.kind != "section":
            assert info.doc.replace("|", "\\|") in row


def test_docs_example_is_a_valid_spec():
    spec = load_spec_text(EXAMPLE, "docs example")
    assert spec.model.type == "cnn" and spec.optimizer.lr == 3e-4
    assert re.search(r"```yaml\n" + re.escape(EXAMPLE) + "```", markdown_reference())


def test_defaults_are_not_changed_by_loading():
    # a guard for the example and docs above: they show the dataclass defaults
    assert dataclasses.asdict(load_spec_text(example_yaml())) == dataclasses.asdict(Spec())
