"""Task heads, losses, metrics and synthetic data as rendered for each task (no training)."""

from __future__ import annotations

import ast

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import spec_with


@pytest.mark.parametrize(
    "changes, outputs, target",
    [
        ({"task": "binary"}, 1, "binary"),
        ({"task": "classification", "data.num_classes": 7}, 7, "class_index"),
        ({"task": "multilabel", "data.num_classes": 5}, 5, "multi_hot"),
        ({"task": "regression", "data.num_targets": 2}, 2, "values"),
        ({"task": "reconstruction", "data.input_shape": (4, 6)}, 24, "inputs"),
        (
            {"task": "sequence_classification", "model.type": "rnn", "data.num_classes": 4},
            4,
            "class_index",
        ),
        (
            {"task": "language_modelling", "model.type": "transformer", "data.vocab_size": 50},
            50,
            "next_tokens",
        ),
    ],
)
def test_head_width_and_targets_follow_the_task(changes, outputs, target):
    context = build_context(spec_with(**changes), "pytorch")
    assert (context["num_outputs"], context["target_kind"]) == (outputs, target)


@pytest.mark.parametrize(
    "changes, loss, metric_classes",
    [
        (
            {"task": "binary", "metrics": ("f1", "auroc")},
            "BCEWithLogitsLoss",
            ["BinaryF1Score", "BinaryAUROC"],
        ),
        ({"task": "multilabel"}, "BCEWithLogitsLoss", ["MultilabelAccuracy", "MultilabelF1Score"]),
        (
            {"task": "multiclass", "metrics": ("precision", "recall")},
            "CrossEntropyLoss",
            ["MulticlassPrecision", "MulticlassRecall"],
        ),
        (
            {"task": "regression", "metrics": ("mse", "mae", "r2")},
            "MSELoss",
            ["MeanSquaredError", "MeanAbsoluteError", "R2Score"],
        ),
        (
            {
                "task": "language_modelling",
                "model.type": "rnn",
                "metrics": ("perplexity", "accuracy"),
            },
            "CrossEntropyLoss",
            ["Perplexity", "MulticlassAccuracy", "TokenLoss"],
        ),
    ],
)
def test_metrics_module_uses_torchmetrics_for_the_task(changes, loss, metric_classes):
    files = render_project(spec_with(**changes), "lightning", format_code=False)
    metrics = files["tabular_classifier/metrics.py"]
    ast.parse(metrics)
    # the loss is chosen in the config, from the losses that fit the task
    assert f'"{loss}"' in files["tabular_classifier/config.py"]
    assert "getattr(nn, LOSSES[config.loss.name])" in metrics
    assert all(f"{name}(" in metrics for name in metric_classes), metrics
    assert "torchmetrics" in files["pyproject.toml"]


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_synthetic_data_has_its_own_module_and_only_for_synthetic_data(style):
    files = render_project(spec_with(task="multilabel"), style, format_code=False)
    synthetic = files["tabular_classifier/synthetic.py"]
    assert "def make_synthetic(" in synthetic and "generator=generator" in synthetic
    assert "torch.manual_seed" not in synthetic  # never the global RNG
    assert "from .synthetic import make_synthetic" in files["tabular_classifier/data.py"]
    csv = spec_with(**{"data.source": "csv", "data.path": "d.csv"})
    files = render_project(csv, style, format_code=False)
    assert "tabular_classifier/synthetic.py" not in files
    assert "synthetic" not in files["tabular_classifier/data.py"].split('"""', 2)[2]


def test_lm_transformer_is_causal_and_rnn_lm_predicts_every_step():
    transformer = spec_with(**{"task": "language_modelling", "model.type": "transformer"})
    files = render_project(transformer, "pytorch", format_code=False)
    assert "causal: bool = True" in files["tabular_classifier/config.py"]
    assert "generate_square_subsequent_mask" in files["tabular_classifier/model.py"]
    rnn = spec_with(**{"task": "language_modelling", "model.type": "rnn"})
    model = render_project(rnn, "pytorch", format_code=False)["tabular_classifier/model.py"]
    assert "return self.head(self.dropout(steps))" in model
