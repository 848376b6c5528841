"""Tasks and model families: per-task defaults, and the rules that keep models, tasks,
inputs, losses and metrics consistent (each conflict names both fields)."""

from __future__ import annotations

import pytest

from torch_scaffold.errors import SpecError
from torch_scaffold.spec import (
    effective_input_shape,
    effective_loss,
    effective_metrics,
    load_spec_text,
    monitor_names,
)
from torch_scaffold.spec.derived import TASK_DEFAULTS, effective_causal, input_kind, task_kind
from torch_scaffold.spec.schema import METRICS, TASKS


def load(text: str):
    return load_spec_text("name: d\n" + text + "\n", "s.yaml")


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load(text)
    return caught.value


@pytest.mark.parametrize(
    "task, loss, metrics",
    [
        ("classification", "cross_entropy", ("accuracy",)),
        ("multiclass", "cross_entropy", ("accuracy",)),
        ("binary", "bce_with_logits", ("accuracy", "auroc")),
        ("multilabel", "bce_with_logits", ("accuracy", "f1")),
        ("regression", "mse", ("mse", "mae")),
        ("reconstruction", "mse", ("mse",)),
    ],
)
def test_each_task_picks_its_loss_and_metrics(task, loss, metrics):
    spec = load(f"task: {task}")
    assert (effective_loss(spec), effective_metrics(spec)) == (loss, metrics)
    assert monitor_names(spec) == ("val_loss", *(f"val_{m}" for m in metrics))


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_token_tasks_read_seq_len_tokens(model):
    spec = load(f"task: sequence_classification\nmodel: {{type: {model}}}\ndata: {{seq_len: 9}}")
    assert input_kind(spec) == "tokens" and effective_input_shape(spec) == (9,)
    lm = load(f"task: language_modelling\nmodel: {{type: {model}}}")
    assert effective_metrics(lm) == ("perplexity",) and effective_loss(lm) == "cross_entropy"


def test_classification_is_multiclass():
    assert task_kind("classification") == "multiclass"
    assert TASK_DEFAULTS["multiclass"] == TASK_DEFAULTS[task_kind("classification")]


def test_every_task_and_metric_has_defaults_and_a_home():
    assert {task_kind(t) for t in TASKS} == set(TASK_DEFAULTS)
    homes = {m for _, _, allowed in TASK_DEFAULTS.values() for m in allowed}
    assert homes == set(METRICS)


def test_transformer_is_causal_for_language_modelling_only():
    assert effective_causal(load("task: language_modelling\nmodel: {type: transformer}"))
    assert not effective_causal(load("task: regression\nmodel: {type: transformer}"))
    assert effective_causal(load("task: regression\nmodel: {type: transformer, causal: true}"))


@pytest.mark.parametrize(
    "model, shape",
    [("mlp", (20,)), ("cnn", (1, 16, 16)), ("resnet", (1, 16, 16)), ("rnn", (16, 8))],
)
def test_default_synthetic_shapes(model, shape):
    assert effective_input_shape(load(f"task: regression\nmodel: {{type: {model}}}")) == shape


@pytest.mark.parametrize(
    "text, blamed, other",
    [
        # metrics that do not fit the task: the item is blamed, the task named
        ("task: regression\nmetrics: [auroc]", "s.yaml:3: metrics[0]", "task (line 2)"),
        ("task: regression\nmetrics: [mse, f1]", "s.yaml:3: metrics[1]", "task (line 2)"),
        ("task: binary\nmetrics: [perplexity]", "metrics[0]", "task (line 2)"),
        ("task: language_modelling\nmodel: {type: rnn}\nmetrics: [r2]", "metrics[0]", "task"),
        ("metrics: [accuracy]\ntask: regression", "s.yaml:2: metrics[0]", "task (line 3)"),
        ("task: multiclass\nloss: bce_with_logits", "loss", "task (line 2)"),
        ("task: binary\nloss: cross_entropy", "loss", "task (line 2)"),
        ("task: reconstruction\nloss: bce_with_logits", "loss", "task (line 2)"),
        # models that cannot be built for the task or the inputs
        ("task: sequence_classification\nmodel: {type: cnn}", "model.type", "task (line 2)"),
        ("task: language_modelling\nmodel: {type: mlp}", "model.type", "task (line 2)"),
        ("task: reconstruction\nmodel: {type: resnet}", "model.type", "task (line 2)"),
        ("task: reconstruction\nmodel: {type: transformer}", "model.type", "task (line 2)"),
        (
            "task: language_modelling\nmodel: {type: transformer, causal: false}",
            "model.causal",
            "task (line 2)",
        ),
        (
            "task: language_modelling\nmodel: {type: rnn, bidirectional: true}",
            "model.bidirectional",
            "task (line 2)",
        ),
        ("model: {type: rnn}\ndata: {input_shape: [1, 16, 16]}", "data.input_shape", "model.type"),
        ("model: {type: transformer}\ndata: {input_shape: [8]}", "data.input_shape", "model.type"),
        ("model: {type: resnet}\ndata: {input_shape: [20]}", "data.input_shape", "model.type"),
        (
            "task: sequence_classification\nmodel: {type: rnn}\ndata: {input_shape: [4, 4]}",
            "data.input_shape",
            "task (line 2)",
        ),
        (
            "model: {type: resnet, channels: [4, 4, 4, 4, 4, 4]}\ndata: {input_shape: [1, 8, 8]}",
            "model.channels",
            "data.input_shape",
        ),
        ("model: {type: resnet}\ndata: {source: csv, path: a.csv}", "model.type", "data.source"),
        (
            "model: {type: transformer, embedding_dim: 30, num_heads: 4}",
            "model.num_heads",
            "model.embedding_dim",
        ),
        ("task: reconstruction\ndata: {source: csv, path: a.csv}", "data.source", "task (line 2)"),
        ("task: multilabel\ndata: {source: csv, path: a.csv}", "data.source", "task (line 2)"),
        # custom-model fields on other models
        ("model: {type: mlp, source: net.py:Net}", "model.source", "model.type"),
        ("model: {type: mlp, args: {width: 3}}", "model.args", "model.type"),
    ],
)
def test_conflicts_name_both_fields(text, blamed, other):
    err = error(text)
    assert err.where.endswith(blamed), err.where
    assert other in err.message, err.message


def test_auroc_on_regression_says_where_auroc_fits():
    err = error("task: regression\nmetrics: [auroc]")
    assert "auroc is for" in err.message and "binary" in err.message
    assert "mse, mae, r2" in err.hint


@pytest.mark.parametrize(
    "text",
    [
        "task: binary\nmetrics: [accuracy, f1, precision, recall, auroc]",
        "task: multilabel\nmetrics: [f1, auroc]\ndata: {num_classes: 7}",
        "task: regression\nmetrics: [r2]\ntrainer: {early_stopping: {monitor: val_r2, mode: max}}",
        "task: language_modelling\nmodel: {type: rnn}\nmetrics: [perplexity, accuracy]",
        "task: language_modelling\nmodel: {type: transformer, causal: true}",
        "task: sequence_classification\nmodel: {type: rnn, bidirectional: true, cell: gru}",
        "task: regression\nmodel: {type: transformer}\ndata: {input_shape: [12, 6]}",
        "task: multilabel\nmodel: {type: resnet, channels: [8, 8, 8]}",
        "task: reconstruction\nloss: l1\nmetrics: [mae]",
        "task: classification\nmodel: {type: cnn}\nmetrics: [f1, auroc]",
    ],
)
def test_fitting_combinations_load(text):
    load(text)


def test_monitor_mode_follows_the_new_metrics():
    err = error("task: regression\nmetrics: [r2]\ntrainer: {checkpoint: {monitor: val_r2}}")
    assert err.where.endswith("trainer.checkpoint.monitor") and "use mode: max" in err.hint
    assert "trainer.checkpoint.mode (default) min" in err.message
    load(
        "task: language_modelling\nmodel: {type: rnn}\ntrainer: {checkpoint: {monitor: val_perplexity}}"
    )


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("model: {type: custom, args: [1, 2]}", "model.args", "expected a mapping"),
        ("model: {type: custom, args: {1st: 2}}", "model.args", "not a Python name"),
        ("model: {type: custom, args: {class: 2}}", "model.args", "not a Python name"),
        ("model: {type: custom, args: {a: {b: 1}}}", "model.args.a", "plain values"),
    ],
)
def test_model_args_are_named_plain_values(text, where, message):
    err = error(text)
    assert err.where.endswith(where) and message in err.message + err.hint


def test_every_example_spec_is_documented_and_listed():
    from pathlib import Path

    from torch_scaffold.spec.examples import EXAMPLE_SPECS

    folder = Path(__file__).resolve().parents[2] / "examples" / "specs"
    on_disk = {path.name for path in folder.glob("*.yaml")}
    assert {name for name, *_ in EXAMPLE_SPECS} == on_disk
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in on_disk)
    for name, model, task, _ in EXAMPLE_SPECS:  # the table says what the file holds
        spec = load_spec_text((folder / name).read_text(encoding="utf-8"), str(folder / name))
        assert (spec.model.type, spec.task) == (model, task), name
