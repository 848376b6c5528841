"""Loading specs from text: types, defaults, line numbers, overrides and cross-field rules."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from torch_scaffold.errors import SpecError
from torch_scaffold.spec import (
    Spec,
    default_spec,
    effective_input_shape,
    effective_loss,
    effective_metrics,
    load_spec,
    load_spec_text,
    monitor_names,
    resolve,
    to_dict,
)

GOOD = Path(__file__).parent / "good_specs"


def error(text: str, overrides=(), source: str = "s.yaml") -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, source, overrides)
    err = caught.value
    assert "\n" not in err.render().split("\nhint: ")[0], "the error must be one line"
    return err


# --- values and defaults -------------------------------------------------------------------


def test_minimal_spec_fills_every_default():
    spec = load_spec_text("name: demo\n", "s.yaml")
    assert spec == dataclasses.replace(Spec(), name="demo")


def test_default_spec_is_an_mlp_classifier_on_synthetic_data():
    spec = default_spec()
    assert (spec.task, spec.model.type, spec.data.source) == ("classification", "mlp", "synthetic")


def test_no_path_loads_the_embedded_default_with_overrides():
    assert load_spec(None) == default_spec()
    assert load_spec(None, ["trainer.max_epochs=2"]).trainer.max_epochs == 2
    with pytest.raises(SpecError) as caught:
        load_spec(None, ["trainer.max_epochs=0"])
    assert caught.value.where == "--set trainer.max_epochs"


def test_full_spec_values_are_typed():
    spec = load_spec(GOOD / "cnn-images.yaml")
    assert spec.name == "Digits CNN"
    assert spec.description == 'Quotes " and backslashes \\ survive; so does {{ jinja }}.'
    assert spec.model.channels == (8, 16, 32) and isinstance(spec.model.channels, tuple)
    assert spec.optimizer.lr == 0.05 and isinstance(spec.optimizer.lr, float)  # from `5e-2`
    assert spec.trainer.precision == "32"  # written as the integer 32
    assert spec.trainer.gradient_clip_val == 1.0
    assert spec.metrics == ("accuracy",)
    assert spec.logging.tensorboard is False and spec.logging.csv is True


def test_specs_are_frozen():
    spec = load_spec_text("name: demo\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model.type = "cnn"  # type: ignore[misc]


@pytest.mark.parametrize("text,value", [("3e-4", 3e-4), ("1E-3", 1e-3), ("2", 2.0), ("0.5", 0.5)])
def test_floats_accept_exponents_and_integers(text, value):
    spec = load_spec_text(f"name: d\noptimizer:\n  lr: {text}\n")
    assert spec.optimizer.lr == value and type(spec.optimizer.lr) is float


def test_quoted_number_is_text_not_a_number():
    err = error('name: d\noptimizer:\n  lr: "3e-4"\n')
    assert err.where == "s.yaml:3: optimizer.lr"
    assert err.hint == "remove the quotes around the value"


@pytest.mark.parametrize("value", ["true", "1.0", "'3'", "[3]"])
def test_integers_reject_booleans_floats_text_and_lists(value):
    err = error(f"name: d\ntrainer:\n  max_epochs: {value}\n")
    assert err.where == "s.yaml:3: trainer.max_epochs"


def test_null_or_empty_section_means_defaults():
    assert load_spec_text("name: d\nmodel:\ntrainer: ~\n").model == Spec().model


def test_optional_fields_accept_null():
    spec = load_spec_text("name: d\nmetrics: null\ntrainer:\n  gradient_clip_val: ~\n")
    assert spec.metrics is None and spec.trainer.gradient_clip_val is None


def test_unicode_survives():
    spec = load_spec_text("name: Réseau ünïcode 网络\ndescription: 'émoji 🚀'\n")
    assert spec.name == "Réseau ünïcode 网络" and spec.description == "émoji 🚀"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: demo\n")
    assert load_spec(path).name == "demo"


# --- where errors point ---------------------------------------------------------------------


def test_errors_name_line_and_list_index_in_block_lists():
    err = error("name: d\nmodel:\n  hidden_sizes:\n    - 64\n    - 32\n    - -5\n")
    assert err.where == "s.yaml:6: model.hidden_sizes[2]"
    assert err.message == "must be >= 1, got -5"


def test_first_error_in_the_file_is_reported():
    err = error("name: d\noptimizer:\n  lr: -1\ntrainer:\n  max_epochs: 0\n")
    assert err.where == "s.yaml:3: optimizer.lr"


def test_unknown_key_suggests_the_close_field():
    err = error("name: d\ntrainer:\n  max_epoch: 3\n")
    assert (err.where, err.hint) == ("s.yaml:3: trainer.max_epoch", "did you mean `max_epochs`?")


def test_unknown_key_in_wrong_section_points_to_the_right_one():
    err = error("name: d\nmodel:\n  min_delta: 3\n")
    assert "trainer.early_stopping.min_delta" in err.hint


def test_missing_name_is_reported_without_a_line():
    err = error("task: regression\n")
    assert (err.where, err.message) == ("s.yaml: name", "missing required field")


def test_conflict_names_both_fields_and_lines():
    err = error("name: d\ntask: regression\nmetrics: [accuracy]\n")
    assert err.where == "s.yaml:3: metrics[0]"
    assert "task (line 2)" in err.message


def test_conflict_with_a_default_says_default():
    err = error("name: d\nmodel:\n  type: cnn\n  channels: [4, 4, 4, 4, 4]\n")
    assert err.where == "s.yaml:4: model.channels"
    assert "data.input_shape (default) is 16x16" in err.message


# --- overrides -----------------------------------------------------------------------------


def test_overrides_set_scalars_lists_and_nested_fields():
    spec = load_spec_text(
        "name: d\n",
        overrides=[
            "optimizer.lr=3e-4",
            "model.hidden_sizes=[256,128]",
            "trainer.early_stopping.patience=2",
            "trainer.precision=bf16-mixed",
            "description=has = sign",
        ],
    )
    assert spec.optimizer.lr == 3e-4
    assert spec.model.hidden_sizes == (256, 128)
    assert spec.trainer.early_stopping.patience == 2
    assert spec.trainer.precision == "bf16-mixed"
    assert spec.description == "has = sign"


def test_override_replaces_a_bad_file_value_and_can_supply_the_name():
    spec = load_spec_text("optimizer:\n  lr: -1\n", overrides=["optimizer.lr=0.1", "name=x"])
    assert spec.optimizer.lr == 0.1 and spec.name == "x"


def test_override_can_replace_a_whole_section():
    spec = load_spec_text(
        "name: d\ntrainer:\n  early_stopping:\n    patience: 9\n",
        overrides=["trainer.early_stopping={enabled: false}"],
    )
    assert spec.trainer.early_stopping.enabled is False
    assert spec.trainer.early_stopping.patience == 5  # replaced, not merged


def test_override_null_clears_an_optional_field():
    spec = load_spec_text("name: d\nmetrics: [accuracy]\n", overrides=["metrics="])
    assert spec.metrics is None


@pytest.mark.parametrize(
    "override,where,fragment",
    [
        ("optimizer.lr=-0.1", "--set optimizer.lr", "must be > 0"),
        ("model.hidden_sizes=[64,x]", "--set model.hidden_sizes[1]", "expected a whole number"),
        ("optimzer.lr=1", "--set optimzer.lr", "unknown field 'optimzer'"),
        ("optimizer.lr.x=1", "--set optimizer.lr.x", "optimizer.lr is a value"),
        ("optimizer.lr=[1", "--set optimizer.lr", "invalid YAML"),
        ("name=&a x", "--set name", "anchors are not allowed"),
        ("name=!!python/name:os.system", "--set name", "tag"),
        ("=3", "--set", "expected KEY=VALUE"),
        ("name=\udcff", "--set name", "not valid UTF-8"),  # undecodable byte in argv
        ("trainer.max_epochs=", "--set trainer.max_epochs", "got nothing (null)"),
    ],
)
def test_bad_overrides_name_the_option(override, where, fragment):
    err = error("name: d\n", overrides=[override])
    assert err.where == where
    assert fragment in err.message


def test_unknown_override_gets_did_you_mean():
    assert error("name: d\n", overrides=["trainer.max_epoch=3"]).hint == (
        "did you mean `trainer.max_epochs`?"
    )


def test_override_conflict_says_set():
    err = error("name: d\ntask: regression\n", overrides=["loss=cross_entropy"])
    assert err.where == "--set loss" and "task (line 2)" in err.message


# --- cross-field rules: the valid neighbours of each conflict load --------------------------


@pytest.mark.parametrize(
    "text",
    [
        "model: {type: cnn}\ndata: {input_shape: [3, 32, 32]}",
        "model: {type: cnn, channels: [8, 8, 8, 8]}\ndata: {input_shape: [1, 16, 16]}",
        "model: {type: cnn}\ndata: {source: npz, path: x.npz}",
        "task: regression\nloss: l1\nmetrics: [mae]",
        "data: {val_split: 0.45, test_split: 0.44}",
        (
            "data: {val_split: 0}\ntrainer: {early_stopping: {enabled: false},"
            " checkpoint: {enabled: false}}"
        ),
        "trainer: {early_stopping: {monitor: val_accuracy, mode: max}}",
        "trainer: {precision: bf16-mixed, accelerator: cpu}",
        "trainer: {precision: 16-mixed, accelerator: cuda}",
        "trainer: {gradient_clip_algorithm: value}",
        "scheduler: {name: onecycle}\ntrainer: {accumulate_grad_batches: 4}",
        "scheduler: {name: step, eta_min: 5}",  # eta_min only matters for cosine
        "trainer: {early_stopping: {enabled: false, monitor: val_f1, mode: max}}",
        "trainer: {devices: 4, num_nodes: 2, strategy: ddp, compile: true}",
    ],
)
def test_valid_combinations_load(text):
    load_spec_text("name: d\n" + text + "\n")


@pytest.mark.parametrize(
    "text,field,other",
    [
        ("model: {type: cnn}\ndata: {input_shape: [20]}", "data.input_shape", "model.type"),
        ("task: regression\nloss: cross_entropy", "loss", "task"),
        ("task: regression\nmetrics: [accuracy]", "metrics[0]", "task"),
        ("data: {source: csv}", "data.source", "data.path"),
        ("data: {val_split: 0.5, test_split: 0.4}", "data.test_split", "data.val_split"),
        ("trainer: {checkpoint: {monitor: val_accuracy}}", "checkpoint.monitor", "mode (default)"),
        ("trainer: {precision: 16-mixed, accelerator: cpu}", "trainer.precision", "accelerator"),
        ("scheduler: {name: cosine, eta_min: 0.5}", "scheduler.eta_min", "optimizer.lr"),
        ("data: {val_split: 0}", "data.val_split", "trainer.early_stopping.enabled"),
        ("trainer: {accelerator: mps, num_nodes: 2}", "trainer.num_nodes", "accelerator"),
    ],
)
def test_conflicts_name_both_fields(text, field, other):
    err = error("name: d\n" + text + "\n")
    assert err.where.endswith(field)
    assert other in err.message


# --- plain data and derived values -----------------------------------------------------------


@pytest.mark.parametrize("path", sorted(GOOD.glob("*.yaml")), ids=lambda p: p.name)
def test_to_dict_round_trips_through_yaml_and_json(path):
    spec = load_spec(path)
    data = to_dict(spec)
    json.dumps(data)  # plain data only
    assert load_spec_text(yaml.safe_dump(data), "dump.yaml") == spec
    assert set(data) == {f.name for f in dataclasses.fields(Spec)}
    assert isinstance(data["model"]["hidden_sizes"], list)


def test_derived_values_follow_the_task_and_model():
    regression = load_spec_text("name: d\ntask: regression\n")
    assert effective_loss(regression) == "mse"
    assert effective_metrics(regression) == ("mse", "mae")
    assert monitor_names(regression) == ("val_loss", "val_mse", "val_mae")
    cnn = load_spec_text("name: d\nmodel: {type: cnn}\n")
    assert effective_input_shape(cnn) == (1, 16, 16)
    assert effective_input_shape(load_spec(GOOD / "csv-regression.yaml")) is None
    resolved = resolve(default_spec())
    assert (resolved.loss, resolved.metrics, resolved.data.input_shape) == (
        "cross_entropy",
        ("accuracy",),
        (20,),
    )


def test_loading_imports_nothing_heavy():
    code = (
        "import sys; from torch_scaffold.spec import load_spec_text, example_yaml, json_schema;"
        "load_spec_text(example_yaml()); json_schema();"
        "heavy = {'torch', 'lightning', 'pytorch_lightning', 'black', 'libcst', 'jinja2'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"
