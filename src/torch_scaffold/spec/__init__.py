"""The model specification: schema, YAML loading with line numbers, validation, defaults.

Public interface (used by the CLI and the generator):
    load_spec(path, overrides) -> Spec          read + check a file; raises SpecError (exit 2);
                                                path None: the embedded default spec
    load_spec_text(text, source, overrides)     the same from text, pure, for tests
    default_spec() -> Spec                      the embedded default (an MLP on synthetic data)
    example_yaml() -> str                       the default spec as annotated YAML
    json_schema() -> dict                       JSON Schema (draft 2020-12) of a spec file
    markdown_reference() -> str                 docs/spec.md
    to_dict(spec) -> dict                       plain nested dict with lists, every field present
    resolve(spec) -> Spec                       loss/metrics/input_shape made concrete
    effective_loss / effective_metrics / effective_input_shape / monitor_names
    project_names(spec) -> (slug, package)      folder name and importable package name

Loading never imports torch, black or libcst; `scaffold spec check` stays fast.
"""

from torch_scaffold.spec.derived import (
    effective_input_shape,
    effective_loss,
    effective_metrics,
    monitor_names,
    resolve,
)
from torch_scaffold.spec.dump import default_spec, to_dict
from torch_scaffold.spec.load import load_spec, load_spec_text
from torch_scaffold.spec.names import project_names
from torch_scaffold.spec.schema import Spec


def example_yaml() -> str:
    from torch_scaffold.spec.example import example_yaml as render

    return render()


def json_schema() -> dict:
    from torch_scaffold.spec.jsonschema import json_schema as build

    return build()


def markdown_reference() -> str:
    from torch_scaffold.spec.docs import markdown_reference as render

    return render()


__all__ = [
    "Spec",
    "default_spec",
    "effective_input_shape",
    "effective_loss",
    "effective_metrics",
    "example_yaml",
    "json_schema",
    "load_spec",
    "load_spec_text",
    "markdown_reference",
    "monitor_names",
    "project_names",
    "resolve",
    "to_dict",
]
