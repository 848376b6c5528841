"""Property tests: values drawn from the schema itself.

- any invalid value (wrong type, out of range, unknown choice, bad list length) in any field
  raises SpecError naming that field (one error; a mapping with several bad keys, one per
  key), and through the CLI exits 2 with those error lines only;
- any spec assembled from valid values that respect the cross-field rules loads, and loads
  to exactly the values that were written;
- arbitrary text and mutated specs give a Spec or a SpecError, never another exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import LEAVES, SECTIONS, WORDS, dump, flow, invalid_cases, put, valid_specs

from torch_scaffold.cli import main
from torch_scaffold.errors import SpecError, each_error
from torch_scaffold.spec import Spec, load_spec_text, to_dict
from torch_scaffold.spec.introspect import walk
from torch_scaffold.spec.source import decode_spec_bytes

MINIMAL = str(Path(__file__).parent / "good_specs" / "minimal.yaml")
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# whole-spec strategies draw ~70 values each; 100 examples keep them to a few seconds
WHOLE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- invalid values ------------------------------------------------------------------------


@FAST
@given(invalid_cases())
def test_invalid_value_in_any_field_names_that_field(case):
    path, value, index = case
    text = dump(put({"name": "demo"}, path, value))
    try:
        load_spec_text(text, "s.yaml")
    except SpecError as caught:
        errors = each_error(caught)
        # one bad value is one error; only a mapping (model.args) has one per bad key
        assert len(errors) == 1 or isinstance(value, dict), caught.render()
        for err in errors:
            field = re.escape(path) + (r"(\[\d+\])?")
            assert re.fullmatch(rf"s\.yaml:\d+: {field}", err.where), (err.where, path, value)
            if index is not None and not re.search(r"\[\d+\]$", err.where):
                # the only bad item was flagged, or the list as a whole (length) was
                assert "item" in err.message, err.render()
            assert err.hint and len(err.render()) < 400, err.render()
            assert err.render().count("\n") == 1, err.render()  # one error line, one hint line
    else:
        raise AssertionError(f"{path}={value!r} was accepted")


@FAST
@given(st.sampled_from(SECTIONS), st.one_of(st.integers(), WORDS, st.lists(st.integers())))
def test_section_given_a_scalar_or_list_names_the_section(path, value):
    with pytest.raises(SpecError) as caught:
        load_spec_text(dump(put({"name": "demo"}, path, value)), "s.yaml")
    assert re.fullmatch(rf"s\.yaml:\d+: {re.escape(path)}", caught.value.where)


@FAST
@given(st.sampled_from([""] + [p + "." for p in SECTIONS]), WORDS)
def test_unknown_key_anywhere_names_the_key(prefix, key):
    known = {p for p, _ in walk(Spec)}
    if prefix + key in known:
        return
    with pytest.raises(SpecError) as caught:
        load_spec_text(dump(put({"name": "demo"}, prefix + key, 1)), "s.yaml")
    assert caught.value.where.endswith(f": {prefix}{key}")
    assert "unknown field" in caught.value.message


@settings(max_examples=100, deadline=None)
@given(invalid_cases())
def test_invalid_override_through_cli_exits_2_with_one_error_line(case):
    path, value, _ = case
    result = CliRunner().invoke(main, ["spec", "check", MINIMAL, "--set", f"{path}={flow(value)}"])
    assert result.exit_code == 2, (result.output, path, value)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: --set {path}")
    errors = [line for line in lines if line.startswith("error: ")]
    assert all(line.startswith(f"error: --set {path}") for line in errors), lines
    assert len(lines) <= 2 * len(errors) and (len(errors) == 1 or isinstance(value, dict))


# --- valid specs ---------------------------------------------------------------------------


def _same(loaded, written) -> bool:
    if isinstance(written, dict):
        return all(_same(loaded[k], v) for k, v in written.items())
    if isinstance(written, (list, tuple)):
        return len(loaded) == len(written) and all(map(_same, loaded, written))
    if isinstance(written, float):
        return isinstance(loaded, float) and loaded == written
    return loaded == written and type(loaded) is type(written)


@WHOLE
@given(valid_specs())
def test_valid_specs_load_to_exactly_what_was_written(data):
    spec = load_spec_text(dump(data), "valid.yaml")
    assert _same(to_dict(spec), data)


@WHOLE
@given(valid_specs())
def test_valid_specs_load_from_overrides_too(data):
    flat = [(p, v) for p, _ in LEAVES for v in [_get(data, p)]]
    overrides = [f"{p}={flow(v)}" for p, v in flat]
    spec = load_spec_text("name: placeholder\n", "o.yaml", overrides)
    assert _same(to_dict(spec), data)


def _get(data: dict, path: str):
    for part in path.split("."):
        data = data[part]
    return data


# --- fuzzing the reader ----------------------------------------------------------------------


@FAST
@given(st.text(max_size=300) | st.text(st.characters(categories=["Cs", "Cc", "Ll"]), max_size=30))
def test_any_text_gives_a_spec_or_a_spec_error(text):
    try:
        load_spec_text(text, "fuzz.yaml")
    except SpecError as err:
        assert "\n" not in err.render().split("\nhint: ")[0]


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_give_a_spec_or_a_spec_error(data):
    try:
        load_spec_text(decode_spec_bytes(data, "fuzz.yaml"), "fuzz.yaml")
    except SpecError:
        pass


@WHOLE
@given(valid_specs(), st.data())
def test_mutated_specs_give_a_spec_or_a_spec_error(data, draw):
    text = dump(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(text)))
        junk = draw.draw(
            st.sampled_from(
                [
                    "",
                    ":",
                    "- ",
                    "[",
                    "]",
                    "{",
                    "\t",
                    "&a ",
                    "*a",
                    "!!",
                    "\n  ",
                    "\n",
                    "'",
                    '"',
                    "#",
                    "0",
                    "-1",
                    ",",
                    "%",
                ]
            )
        )
        cut = draw.draw(st.integers(0, 3))
        text = text[:at] + junk + text[at + cut :]
    try:
        load_spec_text(text, "mutated.yaml")
    except SpecError as err:
        assert err.render().startswith("error: mutated.yaml")
