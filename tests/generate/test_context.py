"""build_context: derived values the templates rely on (pure)."""

import json

import pytest

from torch_scaffold.generate.context import (
    build_context,
    cookiecutter_json,
    plain_data,
)
from torch_scaffold.spec.schema import Spec

from .helpers import REPO, spec_with


def test_default_context_resolves_auto_values():
    context = build_context(Spec(), "pytorch")
    assert context["loss"] == "cross_entropy"
    assert context["loss_class"] == "nn.CrossEntropyLoss"
    assert context["metrics"] == ["accuracy"]
    assert context["input_shape"] == [20] and context["input_dim"] == 20
    assert context["num_outputs"] == 3
    assert context["scheduler_interval"] is None
    assert (context["project_slug"], context["package_name"]) == (
        "tabular-classifier",
        "tabular_classifier",
    )


def test_regression_and_cnn_defaults():
    context = build_context(
        spec_with(**{"task": "regression", "model.type": "cnn", "data.num_targets": 2}), "lightning"
    )
    assert context["loss"] == "mse"
    assert context["metrics"] == ["mse", "mae"]
    assert context["input_shape"] == [1, 16, 16] and context["input_dim"] == 256
    assert context["num_outputs"] == 2


@pytest.mark.parametrize(
    "name, interval", [("step", "epoch"), ("cosine", "epoch"), ("onecycle", "step")]
)
def test_scheduler_interval_matches_lightning_semantics(name, interval):
    assert (
        build_context(spec_with(**{"scheduler.name": name}), "pytorch")["scheduler_interval"]
        == interval
    )


def test_onecycle_max_lr_defaults_to_ten_times_lr():
    spec = spec_with(**{"scheduler.name": "onecycle", "optimizer.lr": 0.02})
    assert build_context(spec, "pytorch")["max_lr"] == pytest.approx(0.2)


def test_no_validation_switches_off_early_stopping_and_best_checkpoint():
    context = build_context(spec_with(**{"data.val_split": 0.0}), "pytorch")
    assert not context["early_stopping"] and not context["best_checkpoint"]
    assert context["checkpointing"]


def test_context_is_json_data():
    context = build_context(Spec(), "lightning")
    assert json.loads(json.dumps(context)) == context
    assert plain_data((1, (2, 3))) == [1, [2, 3]]


def test_unknown_style_is_rejected():
    with pytest.raises(ValueError, match="style"):
        build_context(Spec(), "keras")


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_cookiecutter_json_matches_the_default_spec(style):
    """templates/<style>/cookiecutter.json must be regenerated when the context changes."""
    on_disk = json.loads((REPO / "templates" / style / "cookiecutter.json").read_text())
    command = f"import json; from torch_scaffold.generate.context import cookiecutter_json; print(json.dumps(cookiecutter_json('{style}'), indent=2))"
    assert on_disk == cookiecutter_json(
        style
    ), f'regenerate with: python -c "{command}" > templates/{style}/cookiecutter.json'
