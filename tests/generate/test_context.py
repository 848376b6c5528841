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
    assert context["fitting_losses"] == {"cross_entropy": "CrossEntropyLoss"}
    assert context["metrics"] == ["accuracy"]
    assert context["input_shape"] == [20] and context["input_dim"] == 20
    assert context["num_outputs"] == 3
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


def _section(tree, name):
    return next(f for f in tree["fields"] if f["name"] == name)


def test_config_tree_is_the_one_source_of_config_fields():
    """config.py and config.yaml both render this tree: sections, types, defaults, limits."""
    spec = spec_with(**{"optimizer.name": "sgd", "scheduler.name": "step", "task": "regression"})
    tree = build_context(spec, "pytorch")["config_tree"]
    optimizer = _section(tree, "optimizer")
    assert [f["name"] for f in optimizer["fields"]][:2] == ["name", "lr"]
    assert optimizer["arg_defaults"] == {"momentum": 0.9, "nesterov": False}
    assert _section(tree, "scheduler")["arg_defaults"] == {"step_size": 10, "gamma": 0.1}
    loss = _section(tree, "loss")["fields"][0]
    assert loss["value"] == "mse" and "mse, l1, smooth_l1" in loss["comment"]
    assert build_context(spec, "pytorch")["fitting_losses"] == {
        "mse": "MSELoss",
        "l1": "L1Loss",
        "smooth_l1": "SmoothL1Loss",
    }
    lr = optimizer["fields"][1]
    assert (lr["type"], lr["limits"]["exclusive_min"]) == ("float", True)


def test_every_schedule_preset_reads_the_spec_values():
    spec = spec_with(**{"scheduler.gamma": 0.5})
    presets = {p["name"]: p for p in build_context(spec, "pytorch")["schedule_presets"]}
    assert list(presets) == [
        "none",
        "step",
        "multistep",
        "exponential",
        "cosine",
        "plateau",
        "onecycle",
        "warmup_cosine",
    ]
    gamma = next(f for f in presets["plateau"]["fields"] if f["name"] == "gamma")
    assert gamma["value"] == 0.5
    max_lr = next(f for f in presets["onecycle"]["fields"] if f["name"] == "max_lr")
    assert (max_lr["value"], max_lr["type"]) == (None, "float | None")


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
