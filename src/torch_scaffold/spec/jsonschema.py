"""`scaffold spec schema`: JSON Schema (draft 2020-12) of a spec file, from the dataclasses.

For editors (yaml-language-server) and CI checks. The loader is stricter than the schema:
cross-field rules (e.g. a loss that does not fit the task) are not expressible here.
"""

from __future__ import annotations

from typing import Any

from torch_scaffold.spec.dump import to_dict
from torch_scaffold.spec.introspect import FieldInfo, fields_of
from torch_scaffold.spec.schema import Spec

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SINGLE_LINE = "^[^\\u0000-\\u001f\\u007f]*$"  # no line breaks or control characters
_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def json_schema() -> dict:
    schema = {
        "$schema": DRAFT,
        "title": "torch-scaffold model specification",
    }
    schema.update(_object(Spec))
    return schema


def _object(cls: type) -> dict:
    properties = {info.name: _property(info) for info in fields_of(cls)}
    required = [info.name for info in fields_of(cls) if info.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _property(info: FieldInfo) -> dict:
    if info.kind == "section":
        schema = {"description": info.doc, **_object(info.section)}
        if info.optional:
            schema["type"] = ["object", "null"]
        return schema
    if info.kind == "map":
        plain = {"type": ["string", "number", "boolean", "null"]}
        values = {"anyOf": [plain, {"type": "array", "items": plain}]}
        schema = {"type": "object", "additionalProperties": values}
        if info.max_items is not None:
            schema["maxProperties"] = info.max_items
    elif info.kind == "list":
        schema = {"type": "array", "items": _scalar(info, info.item)}
        if info.min_items is not None:
            schema["minItems"] = info.min_items
        if info.max_items is not None:
            schema["maxItems"] = info.max_items
        if info.choices:
            schema["uniqueItems"] = True
    else:
        schema = _scalar(info, info.kind)
    if info.optional:
        schema["type"] = (
            [schema["type"], "null"]
            if isinstance(schema["type"], str)
            else [
                *schema["type"],
                "null",
            ]
        )
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return {"description": info.doc, **schema, "default": to_dict(info.default)}


def _scalar(info: FieldInfo, kind: str) -> dict:
    schema: dict[str, Any] = {"type": _TYPES[kind]}
    if kind == "str" and info.choices:
        enum: list[Any] = list(info.choices)
        # the loader reads `precision: 32` as the choice "32"; say so here too
        numeric = [int(c) for c in info.choices if c.isdigit()]
        if numeric:
            schema["type"] = ["string", "integer"]
            enum += numeric
        schema["enum"] = enum
    if kind in ("int", "float"):
        if info.min is not None:
            schema["exclusiveMinimum" if info.exclusive_min else "minimum"] = info.min
        if info.max is not None:
            schema["exclusiveMaximum" if info.exclusive_max else "maximum"] = info.max
    if kind == "str":
        if not info.multiline and not info.choices:
            schema["pattern"] = SINGLE_LINE
        if info.min_length is not None:
            schema["minLength"] = info.min_length
        if info.max_length is not None:
            schema["maxLength"] = info.max_length
    return schema
