"""Every problem in a spec is reported in one run, in file order, without follow-on errors.

- several bad fields give one SpecErrors holding one error per problem, sorted by line;
- a single problem is still a plain SpecError, rendered exactly as before;
- a cross-field rule that reads a field with its own error is skipped, and the fields of a
  reported conflict count as bad for the rules after it;
- `scaffold spec check` takes several files and reports each one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import LEAVES, dump, invalid_cases, put, valid_specs

from torch_scaffold.cli import main
from torch_scaffold.errors import SpecError, SpecErrors
from torch_scaffold.spec import load_spec_text, rules

GOOD = Path(__file__).parent / "good_specs"
SOME = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def errors_of(text: str, overrides=()) -> list[SpecError]:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "s.yaml", overrides)
    err = caught.value
    return err.errors if isinstance(err, SpecErrors) else [err]


def line_of(err: SpecError) -> float:
    found = re.match(r"s\.yaml:(\d+): ", err.where)
    return int(found.group(1)) if found else float("inf")


# --- collecting ----------------------------------------------------------------------------


def test_several_problems_are_reported_together_in_file_order():
    text = (
        "name: demo\n"
        "trainer:\n"
        "  max_epochs: 0\n"  # range
        "model:\n"
        "  hiden_sizes: [64]\n"  # unknown key
        "  dropout: lots\n"  # type
        "optimizer:\n"
        "  name: adamm\n"  # choice
    )
    with pytest.raises(SpecErrors) as caught:
        load_spec_text(text, "s.yaml")
    err = caught.value
    assert [e.where for e in err.errors] == [
        "s.yaml:3: trainer.max_epochs",
        "s.yaml:5: model.hiden_sizes",
        "s.yaml:6: model.dropout",
        "s.yaml:8: optimizer.name",
    ]
    # the first problem is the exception's own message, so callers that read one still can
    assert (err.where, err.message, err.hint) == (
        err.errors[0].where,
        err.errors[0].message,
        err.errors[0].hint,
    )
    assert err.render() == "\n".join(e.render() for e in err.errors)
    assert err.render().count("\nhint: ") == 4


def test_one_problem_is_a_plain_spec_error():
    with pytest.raises(SpecError) as caught:
        load_spec_text("name: demo\noptimizer:\n  lr: -1\n", "s.yaml")
    assert type(caught.value) is SpecError
    assert caught.value.render() == (
        "error: s.yaml:3: optimizer.lr: must be > 0, got -1\n"
        "hint: use a value > 0 and <= 10, such as 0.001"
    )


def test_every_bad_list_item_and_argument_is_reported():
    found = errors_of("name: demo\nmodel:\n  hidden_sizes: [0, 64, -1]\n")
    assert [e.where for e in found] == [
        "s.yaml:3: model.hidden_sizes[0]",
        "s.yaml:3: model.hidden_sizes[2]",
    ]
    found = errors_of(
        "name: demo\nmodel:\n  type: custom\n  source: net.py:Net\n  args:\n"
        "    1st: 1\n    class: 2\n    ok: 3\n"
    )
    assert [e.message.split(" is not")[0] for e in found] == ["'1st'", "'class'"]


def test_set_values_and_a_missing_name_come_after_the_lines_of_the_file():
    found = errors_of("optimizer:\n  lr: x\n", overrides=["trainer.max_epochs=0"])
    assert [e.where for e in found] == [
        "s.yaml:2: optimizer.lr",
        "--set trainer.max_epochs",
        "s.yaml: name",
    ]


def test_yaml_problems_still_stop_at_once():
    for text in ("name: [demo\nmodel: 5\n", "- a\n- b\n", "name: &a demo\nmodel: *a\n"):
        assert len(errors_of(text)) == 1
    # a duplicate key stops the check even when other fields are bad too
    assert len(errors_of("name: demo\nname: again\noptimizer: {lr: x}\n")) == 1


# --- no cascades ---------------------------------------------------------------------------


def test_rule_reading_a_bad_field_is_skipped():
    # with the default lr (0.001) standing in for `high`, eta_min 0.01 would "conflict"
    text = "name: demo\noptimizer:\n  lr: high\nscheduler:\n  name: cosine\n  eta_min: 0.01\n"
    assert [e.where for e in errors_of(text)] == ["s.yaml:3: optimizer.lr"]
    # a rule that does not read the bad field still runs
    text += "trainer:\n  precision: 16-mixed\n  accelerator: cpu\n"
    assert [e.where for e in errors_of(text)] == [
        "s.yaml:3: optimizer.lr",
        "s.yaml:8: trainer.precision",
    ]


def test_fields_of_a_conflict_are_not_checked_again_by_later_rules():
    # model_fits_data would find the token shape too small for five conv blocks (or fail on it)
    text = (
        "name: demo\ntask: language_modelling\nmodel:\n  type: cnn\n  channels: [8, 8, 8, 8, 8]\n"
    )
    assert [e.where for e in errors_of(text)] == ["s.yaml:4: model.type"]


def test_a_rule_that_breaks_on_a_spec_already_known_to_be_bad_is_skipped(monkeypatch):
    def broken(spec, loc):
        raise KeyError("relies on a check that did not pass")

    monkeypatch.setattr(rules, "RULES", (*rules.RULES, broken))
    assert [e.where for e in errors_of("name: demo\noptimizer:\n  lr: x\n")] == [
        "s.yaml:3: optimizer.lr"
    ]
    with pytest.raises(KeyError):  # on a spec with no problem so far, a crash is a bug
        load_spec_text("name: demo\n", "s.yaml")


@SOME
@given(valid_specs(), st.lists(invalid_cases(), min_size=2, max_size=4, unique_by=lambda c: c[0]))
def test_bad_values_in_a_valid_spec_give_one_report_naming_exactly_them(data, cases):
    for path, value, _ in cases:
        put(data, path, value)
    found = errors_of(dump(data))
    named = set()
    for err in found:
        where = re.fullmatch(r"s\.yaml:\d+: ([\w.]+?)(\[\d+\])?", err.where)
        assert where, err.render()
        named.add(where.group(1))
        assert err.hint and err.render().count("\n") == 1, err.render()
    # only the bad fields: the rest of the spec was consistent, so no rule may complain
    assert named == {path for path, _, _ in cases}, [e.render() for e in found]
    assert [line_of(e) for e in found] == sorted(line_of(e) for e in found)


def test_strategies_reach_every_leaf():
    assert len(LEAVES) > 50


# --- scaffold spec check A B ... -----------------------------------------------------------


def run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output
    return result


def test_check_several_valid_files_prints_one_ok_line_each():
    files = [str(GOOD / "minimal.yaml"), str(GOOD / "csv-regression.yaml")]
    result = run(["spec", "check", *files])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and result.stderr == ""
    for name, line in zip(files, lines):
        assert line.startswith(f"{name}: ok (")


def test_check_several_files_reports_each_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text("name: demo\n")
    (tmp_path / "bad.yaml").write_text("name: demo\noptimizer:\n  lr: 0\ntrainer:\n  seeed: 1\n")
    (tmp_path / "worse.yaml").write_text("- not\n- a mapping\n")
    result = run(["spec", "check", "bad.yaml", "good.yaml", "missing.yaml", "worse.yaml"])
    assert result.exit_code == 2
    assert result.stdout == "good.yaml: ok (classification, model mlp, data synthetic)\n"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [line.split(": ")[1] for line in errors] == [
        "bad.yaml:3",
        "bad.yaml:5",
        "missing.yaml",
        "worse.yaml:1",
    ]
    assert result.stderr.count("\nhint: ") + result.stderr.startswith("hint: ") == 4


def test_check_one_file_prints_exactly_what_it_printed_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: demo\n")
    result = run(["spec", "check", "s.yaml"])
    assert (result.exit_code, result.stdout) == (
        0,
        "s.yaml: ok (classification, model mlp, data synthetic)\n",
    )


def test_bad_set_is_reported_once_for_several_files():
    files = [str(GOOD / "minimal.yaml"), str(GOOD / "csv-regression.yaml")]
    result = run(["spec", "check", *files, "--set", "optimizer.lrr=1"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --set optimizer.lrr: unknown field 'optimizer.lrr'",
        "hint: did you mean `optimizer.lr`?",
    ]


def test_a_set_value_applies_to_every_file():
    files = [str(GOOD / "minimal.yaml"), str(GOOD / "csv-regression.yaml")]
    result = run(["spec", "check", *files, "--set", "optimizer.lr=-1"])
    assert result.exit_code == 2
    assert result.stderr.count("error: --set optimizer.lr: must be > 0, got -1") == 2


def test_check_needs_a_file():
    result = run(["spec", "check"])
    assert result.exit_code == 2 and "Missing argument" in result.output
