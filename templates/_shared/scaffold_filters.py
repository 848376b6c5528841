"""Jinja filters that turn spec values into literals of the target language.

Spec values are data: they are escaped into Python, TOML, YAML or Markdown by
these filters and never rendered as templates. This file is the template's own
Jinja extension (`_extensions` in cookiecutter.json, through the
`local_extensions.py` link beside it), and torch-scaffold loads the same file,
so cookiecutter and `scaffold new` render identically.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata

from jinja2.ext import Extension


def pyrepr(value):
    """A Python literal: repr() is exact for str/int/float/bool/None and lists of them.

    Strings without quotes inside get black's double quotes, so black has less to change.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot write {value!r} as a Python literal")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(pyrepr(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{pyrepr(k)}: {pyrepr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and _width(_str_literal(value)) > STRING_CHUNK:
        # Too long for one line: adjacent literals in parentheses, which black puts one per
        # line, so the generated code stays within its line length whatever the spec says.
        return "(" + " ".join(_str_literal(chunk) for chunk in _chunks(value)) + ")"
    return _str_literal(value) if isinstance(value, str) else repr(value)


STRING_CHUNK = 72  # longest literal per line: fits 100 columns at any indentation we generate


def _str_literal(value):
    text = repr(value)
    if "'" not in value and '"' not in value:
        text = '"' + text[1:-1] + '"'
    return text


def _width(text):
    """Columns as linters count them: wide (CJK, emoji) characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _chunks(value):
    """Split a string into pieces whose literals are at most STRING_CHUNK characters."""
    chunks, current = [], ""
    for char in value:
        if current and _width(_str_literal(current + char)) > STRING_CHUNK:
            chunks.append(current)
            current = ""
        current += char
    return chunks + [current]


def toml_str(value):
    """A TOML basic string (JSON escapes are valid TOML; DEL must be escaped too)."""
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def _yaml_float(value):
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    # YAML 1.1 (PyYAML) reads 1e-05 as a string: it needs a dot in the mantissa.
    if exponent and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def yaml_value(value):
    """A YAML flow value; strings are JSON-quoted with every non-ASCII character escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} in the config file")
        return _yaml_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_yaml_quoted(str(k))}: {yaml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return _yaml_quoted(str(value))


def _yaml_quoted(text):
    """A YAML double-quoted string, pure ASCII: every other character as a \\u/\\U escape
    (JSON would write astral characters as surrogate pairs, which YAML reads as two characters)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def one_line(value):
    """Collapse whitespace (incl. newlines) so a value fits a heading, comment or docstring line."""
    return re.sub(r"\s+", " ", str(value)).strip()


def md_text(value):
    """One line of Markdown text that shows the value literally (no markup, no HTML)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", one_line(value))


def argparse_text(value):
    """Text for an argparse description or help, shown as written: argparse %-formats a text
    that holds `%(prog)`, so then every `%` is doubled (and only then: elsewhere `%%` would
    show as two)."""
    text = str(value)
    return text.replace("%", "%%") if "%(prog)" in text else text


def project(cookiecutter):
    """The project's context for what was answered at cookiecutter's prompts.

    `_project` holds everything derived from the default spec. The names typed for
    project_slug and package_name replace its own; a `spec` other than the default is derived
    again by torch-scaffold's own code (which then has to be installed), so `cruft update`
    keeps a project's spec. `scaffold new` passes the values it derived, which changes nothing.
    """
    base = cookiecutter["_project"]
    given = cookiecutter.get("spec")
    spec = base["spec"] if given is None else json.loads(given)
    if spec != base["spec"]:
        base = _derived_context(json.dumps(spec), base["style"])
    names = {key: str(cookiecutter.get(key, base[key])) for key in ("project_slug", "package_name")}
    if names["project_slug"] != base["project_slug"]:
        names["project_name"] = names["project_slug"]  # the README's title is the name typed
    return {**base, **names}


_DERIVED = {}


def _derived_context(spec_json, style):
    if (spec_json, style) not in _DERIVED:
        try:
            from torch_scaffold.generate.context import build_context
            from torch_scaffold.spec import load_spec_text
        except ImportError as err:
            raise RuntimeError(
                "this template was given a spec other than its default; deriving the project"
                " from it needs torch-scaffold (pip install torch-scaffold)"
            ) from err
        spec = load_spec_text(spec_json, "the cookiecutter `spec` variable")
        _DERIVED[(spec_json, style)] = build_context(spec, style)
    return _DERIVED[(spec_json, style)]


FILTERS = {
    "project": project,
    "pyrepr": pyrepr,
    "toml_str": toml_str,
    "yaml_value": yaml_value,
    "one_line": one_line,
    "md_text": md_text,
    "argparse_text": argparse_text,
}


class ScaffoldFilters(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.filters.update(FILTERS)
