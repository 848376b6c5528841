"""Values the spec leaves to defaults that depend on other fields.

`Spec()` keeps `None`/`"auto"` for these (that is what a user's file says); the generator
and the cross-field rules ask here for the concrete value, so the rule lives in one place.
"""

from __future__ import annotations

import dataclasses

from torch_scaffold.spec.schema import Spec

# `classification` is the name issue 2 gave multiclass classification; both stay valid.
TASK_ALIASES = {"classification": "multiclass"}
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "auroc")
# task -> (default loss, default metrics, every metric that fits)
TASK_DEFAULTS = {
    "binary": ("bce_with_logits", ("accuracy", "auroc"), CLASSIFICATION_METRICS),
    "multiclass": ("cross_entropy", ("accuracy",), CLASSIFICATION_METRICS),
    "multilabel": ("bce_with_logits", ("accuracy", "f1"), CLASSIFICATION_METRICS),
    "regression": ("mse", ("mse", "mae"), ("mse", "mae", "r2")),
    "sequence_classification": ("cross_entropy", ("accuracy",), CLASSIFICATION_METRICS),
    "language_modelling": ("cross_entropy", ("perplexity",), ("perplexity", "accuracy")),
    "reconstruction": ("mse", ("mse",), ("mse", "mae")),
}
# loss -> the task kinds it fits
LOSS_KINDS = {
    "cross_entropy": ("multiclass", "sequence_classification", "language_modelling"),
    "bce_with_logits": ("binary", "multilabel"),
    "mse": ("regression", "reconstruction"),
    "l1": ("regression", "reconstruction"),
    "smooth_l1": ("regression", "reconstruction"),
}
# which way is better for each monitorable value
METRIC_MODES = {
    "loss": "min",
    "accuracy": "max",
    "f1": "max",
    "precision": "max",
    "recall": "max",
    "auroc": "max",
    "mse": "min",
    "mae": "min",
    "r2": "max",
    "perplexity": "min",
}
# Tasks whose examples are token ids; they read data.vocab_size and data.seq_len.
TOKEN_TASKS = ("sequence_classification", "language_modelling")
# model -> the task kinds it can be built for (custom: whatever the user's module does)
MODEL_KINDS = {
    "mlp": ("binary", "multiclass", "multilabel", "regression", "reconstruction"),
    "cnn": ("binary", "multiclass", "multilabel", "regression"),
    "resnet": ("binary", "multiclass", "multilabel", "regression"),
    "rnn": tuple(k for k in TASK_DEFAULTS if k != "reconstruction"),
    "transformer": tuple(k for k in TASK_DEFAULTS if k != "reconstruction"),
    "custom": tuple(TASK_DEFAULTS),
}
# model -> what one (non-token) example looks like, and its default synthetic shape
MODEL_INPUTS = {
    "mlp": ("features", (20,)),
    "cnn": ("images", (1, 16, 16)),
    "resnet": ("images", (1, 16, 16)),
    "rnn": ("sequences", (16, 8)),
    "transformer": ("sequences", (16, 8)),
    "custom": ("features", (20,)),
}
INPUT_LAYOUTS = {
    "features": "[features]",
    "sequences": "[steps, features]",
    "images": "[channels, height, width]",
}
INPUT_RANKS = {"features": 1, "sequences": 2, "images": 3}
DEFAULT_INPUT_SHAPE = {model: shape for model, (_, shape) in MODEL_INPUTS.items()}
# Sources whose examples are images ([channels, height, width], resized on load).
IMAGE_SOURCES = ("image_folder", "torchvision")
# Sources whose examples are token ids; they feed sequence models only.
TOKEN_SOURCES = ("text",)
# Sources that read data.path (torchvision reads it as its root folder).
FILE_SOURCES = ("csv", "npz", "npy", "image_folder", "text", "torchvision")
# Model families that read token-id sequences.
SEQUENCE_MODELS = ("rnn", "transformer")
DEFAULT_IMAGE_SHAPE = (3, 32, 32)
TORCHVISION_SHAPES = {
    "MNIST": (1, 28, 28),
    "FashionMNIST": (1, 28, 28),
    "KMNIST": (1, 28, 28),
    "CIFAR10": (3, 32, 32),
    "CIFAR100": (3, 32, 32),
}
# Schedulers stepped after every optimizer step; the others after each validation.
STEP_SCHEDULERS = ("onecycle", "warmup_cosine")


def task_kind(task: str) -> str:
    """The canonical task: `classification` is multiclass."""
    return TASK_ALIASES.get(task, task)


def allowed_metrics(task: str) -> tuple[str, ...]:
    return TASK_DEFAULTS[task_kind(task)][2]


def tasks_for_loss(loss: str) -> tuple[str, ...]:
    """Task names (aliases included) a loss fits."""
    kinds = LOSS_KINDS[loss]
    return tuple(t for t in TASK_ALIASES if TASK_ALIASES[t] in kinds) + kinds


def tasks_for_metric(metric: str) -> tuple[str, ...]:
    """Task names (aliases included) a metric fits."""
    kinds = tuple(k for k, (_, _, allowed) in TASK_DEFAULTS.items() if metric in allowed)
    return tuple(t for t in TASK_ALIASES if TASK_ALIASES[t] in kinds) + kinds


def tasks_for_model(model: str) -> tuple[str, ...]:
    kinds = MODEL_KINDS[model]
    return tuple(t for t in TASK_ALIASES if TASK_ALIASES[t] in kinds) + kinds


def input_kind(spec: Spec) -> str:
    """What one example is: tokens, features, sequences (of feature vectors) or images."""
    if task_kind(spec.task) in TOKEN_TASKS:
        return "tokens"
    if spec.data.source in IMAGE_SOURCES:
        return "images"
    kind = MODEL_INPUTS[spec.model.type][0]
    if spec.model.type == "custom" and spec.data.input_shape is not None:
        rank = len(spec.data.input_shape)
        kind = next(k for k, r in INPUT_RANKS.items() if r == rank)
    return kind


def effective_causal(spec: Spec) -> bool:
    """transformer: attend only to earlier positions (always for language modelling)."""
    if spec.model.causal is not None:
        return spec.model.causal
    return task_kind(spec.task) == "language_modelling"


def effective_loss(spec: Spec) -> str:
    return TASK_DEFAULTS[task_kind(spec.task)][0] if spec.loss == "auto" else spec.loss


def effective_metrics(spec: Spec) -> tuple[str, ...]:
    return TASK_DEFAULTS[task_kind(spec.task)][1] if spec.metrics is None else spec.metrics


def effective_input_shape(spec: Spec) -> tuple[int, ...] | None:
    """The shape of one example; None when a data file decides it at training time.

    Token tasks: [seq_len] token ids (language modelling: the inputs, one shorter than a
    stored sequence, are still seq_len long); a text source: [block_size] token ids.
    """
    if task_kind(spec.task) in TOKEN_TASKS:
        if spec.data.source in TOKEN_SOURCES:
            return (spec.data.block_size,)
        return (spec.data.seq_len,) if spec.data.source == "synthetic" else None
    if spec.data.input_shape is not None:
        return spec.data.input_shape
    if spec.data.source == "image_folder":
        return DEFAULT_IMAGE_SHAPE
    if spec.data.source == "torchvision":
        return TORCHVISION_SHAPES[spec.data.dataset]
    if spec.data.source != "synthetic":
        return None
    return DEFAULT_INPUT_SHAPE[spec.model.type]


def monitor_names(spec: Spec) -> tuple[str, ...]:
    """The validation values a monitor may name: val_loss and val_<metric>."""
    return ("val_loss",) + tuple(f"val_{m}" for m in effective_metrics(spec))


def steps_per_epoch(spec: Spec) -> int | None:
    """Optimizer steps per epoch, when the spec alone decides it (synthetic data)."""
    data = spec.data
    if data.source != "synthetic":
        return None
    total = data.num_samples
    train = total - int(total * data.val_split) - int(total * data.test_split)
    batches = -(-train // data.batch_size)
    return -(-batches // spec.trainer.accumulate_grad_batches)


def resolve(spec: Spec) -> Spec:
    """The same spec with loss, metrics, input_shape and causal made concrete."""
    return dataclasses.replace(
        spec,
        loss=effective_loss(spec),
        metrics=effective_metrics(spec),
        model=dataclasses.replace(spec.model, causal=effective_causal(spec)),
        data=dataclasses.replace(spec.data, input_shape=effective_input_shape(spec)),
    )
