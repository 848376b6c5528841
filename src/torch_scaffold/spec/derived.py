"""Values the spec leaves to defaults that depend on other fields.

`Spec()` keeps `None`/`"auto"` for these (that is what a user's file says); the generator
and the cross-field rules ask here for the concrete value, so the rule lives in one place.
"""

from __future__ import annotations

import dataclasses

from torch_scaffold.spec.schema import Spec

TASK_LOSS = {"classification": "cross_entropy", "regression": "mse"}
TASK_METRICS = {"classification": ("accuracy",), "regression": ("mse", "mae")}
LOSS_TASKS = {
    "cross_entropy": "classification",
    "mse": "regression",
    "l1": "regression",
    "smooth_l1": "regression",
}
METRIC_TASKS = {"accuracy": "classification", "mse": "regression", "mae": "regression"}
# which way is better for each monitorable value
METRIC_MODES = {"loss": "min", "accuracy": "max", "mse": "min", "mae": "min"}
DEFAULT_INPUT_SHAPE = {"mlp": (20,), "cnn": (1, 16, 16)}


def effective_loss(spec: Spec) -> str:
    return TASK_LOSS[spec.task] if spec.loss == "auto" else spec.loss


def effective_metrics(spec: Spec) -> tuple[str, ...]:
    return TASK_METRICS[spec.task] if spec.metrics is None else spec.metrics


def effective_input_shape(spec: Spec) -> tuple[int, ...] | None:
    """The shape of one example; None when a csv/npz file decides it at training time."""
    if spec.data.input_shape is not None:
        return spec.data.input_shape
    if spec.data.source != "synthetic":
        return None
    return DEFAULT_INPUT_SHAPE[spec.model.type]


def monitor_names(spec: Spec) -> tuple[str, ...]:
    """The validation values a monitor may name: val_loss and val_<metric>."""
    return ("val_loss",) + tuple(f"val_{m}" for m in effective_metrics(spec))


def resolve(spec: Spec) -> Spec:
    """The same spec with loss, metrics and input_shape made concrete."""
    return dataclasses.replace(
        spec,
        loss=effective_loss(spec),
        metrics=effective_metrics(spec),
        data=dataclasses.replace(spec.data, input_shape=effective_input_shape(spec)),
    )
