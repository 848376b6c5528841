"""The values the templates see, derived from a Spec (pure).

The templates never read the Spec object: they get plain JSON-able data, the
same shape that `templates/<style>/cookiecutter.json` holds for the default
spec, so cookiecutter itself can render the templates too.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from torch_scaffold import __version__
from torch_scaffold.errors import SpecError
from torch_scaffold.spec.derived import (
    DEFAULT_INPUT_SHAPE,
    METRIC_MODES,
    STEP_SCHEDULERS,
    effective_causal,
    effective_input_shape,
    effective_loss,
    effective_metrics,
    input_kind,
    task_kind,
)
from torch_scaffold.spec.introspect import walk
from torch_scaffold.spec.schema import STRATEGIES as SPEC_STRATEGIES
from torch_scaffold.spec.schema import Spec

STYLES = ("pytorch", "lightning")

# Ranges that the generated projects are tested with; upper bounds stop an
# untested major release from being picked up silently.
REQUIREMENTS = {
    "python": ">=3.10",
    "torch": "torch>=2.2,<2.14",
    "lightning": "pytorch-lightning>=2.2,<2.7",
    "pyyaml": "PyYAML>=6,<7",
    "numpy": "numpy>=1.24",
    "tqdm": "tqdm>=4.60",
    "tensorboard": "tensorboard>=2.14,<3",
    "pillow": "Pillow>=9.4",
    "torchvision": "torchvision>=0.17,<0.29",
    "wandb": "wandb>=0.16,<1",
    "mlflow": "mlflow>=2.10,<4",
    "pytest": "pytest>=8",
    "torchmetrics": "torchmetrics>=1.0,<2",
}

_ACTIVATION_CLASSES = {
    "relu": "nn.ReLU",
    "gelu": "nn.GELU",
    "silu": "nn.SiLU",
    "tanh": "nn.Tanh",
    "leaky_relu": "nn.LeakyReLU",
}
_OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
_LOSS_CLASSES = {
    "cross_entropy": "nn.CrossEntropyLoss",
    "bce_with_logits": "nn.BCEWithLogitsLoss",
    "mse": "nn.MSELoss",
    "l1": "nn.L1Loss",
    "smooth_l1": "nn.SmoothL1Loss",
}


def _scheduler_interval(name: str) -> str | None:
    """Lightning steps "epoch" schedulers after validation, "step" ones after each optimizer step."""
    if name == "none":
        return None
    return "step" if name in STEP_SCHEDULERS else "epoch"


def plain_data(value: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists, so the context is JSON (and cookiecutter.json) shaped."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def project_names(spec: Spec) -> tuple[str, str]:
    """(folder slug, importable package name) for the spec's project name."""
    from torch_scaffold.spec.names import project_names as spec_project_names

    return spec_project_names(spec)


def resolved_loss(spec: Spec) -> str:
    return effective_loss(spec)


def resolved_metrics(spec: Spec) -> list[str]:
    return list(effective_metrics(spec))


def resolved_input_shape(spec: Spec) -> list[int]:
    """The synthetic shape; for files (which decide it at training time) the model's default,
    which the project's own tests use to write a small stand-in file."""
    shape = effective_input_shape(spec)
    if shape is None and input_kind(spec) == "tokens":
        shape = (spec.data.seq_len,)
    if shape is None:
        shape = spec.data.input_shape or DEFAULT_INPUT_SHAPE[spec.model.type]
    return list(shape)


# What the dataset's targets are, per task kind (the loss and metrics read them so).
_TARGET_KINDS = {
    "binary": "binary",  # float 0/1, shape [N, 1]
    "multiclass": "class_index",  # int64 class ids, shape [N]
    "multilabel": "multi_hot",  # float 0/1, shape [N, labels]
    "regression": "values",  # float, shape [N, targets]
    "sequence_classification": "class_index",
    "language_modelling": "next_tokens",  # int64 token ids, shape [N, seq_len]
    "reconstruction": "inputs",  # the inputs themselves
}


def _num_outputs(spec: Spec, kind: str, input_dim: int) -> int:
    """Width of the model's head (per position for language modelling)."""
    data = spec.data
    return {
        "binary": 1,
        "multiclass": data.num_classes,
        "multilabel": data.num_classes,
        "regression": data.num_targets,
        "sequence_classification": data.num_classes,
        "language_modelling": data.vocab_size,
        "reconstruction": input_dim,
    }[kind]


def _custom_model(spec: Spec) -> dict[str, Any]:
    """The user's module for `model.type: custom` (its file is read here, an input like the
    templates; the loader has checked it and made its path absolute)."""
    if spec.model.type != "custom":
        return {"custom_class": None, "custom_code": None, "custom_args": {}}
    from pathlib import Path

    from torch_scaffold.spec.custom_model import read_custom_model

    module = read_custom_model(spec.model.source, Path.cwd(), spec.model.args)
    return {
        "custom_class": module.class_name,
        "custom_code": module.code,
        "custom_args": dict(spec.model.args),
    }


# The schema's limits of a field that the generated config.py checks hand-edited values with.
_LIMIT_KEYS = (
    "min",
    "max",
    "exclusive_min",
    "exclusive_max",
    "choices",
    "min_items",
    "max_items",
    "min_length",
    "max_length",
)


def config_limits(spec: Spec) -> dict[str, dict[str, Any]]:
    """{dotted field path: its limits} for every field of the spec, from schema.py: the
    generated config.py puts them on its fields and checks config.yaml, --set and the flags
    with them, as the spec loader checks a spec."""
    limits = {}
    for path, info in walk(Spec):
        if info.kind != "section":
            limits[path] = {
                key: plain_data(info.meta[key])
                for key in _LIMIT_KEYS
                if info.meta.get(key) is not None and info.meta.get(key) is not False
            }
    if spec.trainer.strategy != "fsdp":  # the project has no FSDP code
        limits["trainer.strategy"]["choices"] = [s for s in SPEC_STRATEGIES if s != "fsdp"]
    _runtime_choices(spec, limits)
    return limits


def _preprocessing(spec: Spec, kind: str) -> dict[str, Any]:
    """What the training split's statistics do in the project (the preprocess.py module).

    feature_scaler: the model's first layer, for csv/npz/npy data, with `scale_inputs` (the
    normalize statistics) and `fill_missing` (the mean/median fill values) as buffers, and
    for images with `image_stats` (image_mean/image_std null: per-channel statistics);
    scale_targets: regression outputs are scaled back to the target's units by the model.
    """
    data = spec.data
    tabular = data.source in ("csv", "npz", "npy")
    images = data.source in ("image_folder", "torchvision")
    image_stats = images and data.image_mean is None  # per channel, from the training split
    scale_inputs = (tabular and data.normalize != "none") or image_stats
    fill_missing = tabular and data.missing in ("mean", "median")
    return {
        "feature_scaler": scale_inputs or fill_missing,
        "image_stats": image_stats,
        "scale_inputs": scale_inputs,
        "fill_missing": fill_missing,
        "scale_targets": scale_inputs and kind == "regression",
        "class_weights": data.class_weights != "none",
        "augment": data.augment and data.source in ("image_folder", "torchvision"),
    }


def _runtime_choices(spec: Spec, limits: dict[str, dict[str, Any]]) -> None:
    """config.yaml may switch what the generated code can do, not add code it lacks: the
    scaling method within a scaler, a fill value within a filler, the weights off."""
    data = spec.data
    if data.normalize == "none":
        limits["data.normalize"]["choices"] = ["none"]
    else:
        limits["data.normalize"]["choices"] = ["standard", "minmax"]
    if data.missing in ("mean", "median"):
        limits["data.missing"]["choices"] = ["mean", "median"]
    else:
        limits["data.missing"]["choices"] = ["drop", "error"]
    if data.class_weights == "none":
        limits["data.class_weights"]["choices"] = ["none"]


def _check_style_fits(spec: Spec, style: str) -> None:
    """The one spec rule that depends on the style: Lightning's FSDP runs on GPUs only."""
    trainer = spec.trainer
    if style == "lightning" and trainer.strategy == "fsdp" and trainer.accelerator == "cpu":
        raise SpecError(
            "trainer.strategy: fsdp needs GPUs in the Lightning style, but trainer.accelerator"
            " is cpu",
            hint="generate with --style pytorch (its FSDP runs on CPU under torchrun), or set"
            " trainer.accelerator: auto or cuda",
        )


def build_context(spec: Spec, style: str) -> dict[str, Any]:
    """Everything the templates need: the normalized spec plus derived names and values."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    _check_style_fits(spec, style)
    slug, package = project_names(spec)
    input_shape = resolved_input_shape(spec)
    input_dim = math.prod(input_shape)
    loss = resolved_loss(spec)
    kind = task_kind(spec.task)
    scheduler = spec.scheduler
    return {
        "style": style,
        "scaffold_version": __version__,
        "project_name": spec.name,
        "description": spec.description,
        "project_slug": slug,
        "package_name": package,
        "spec": plain_data(spec),
        "task": spec.task,
        "task_kind": kind,
        "target_kind": _TARGET_KINDS[kind],
        # class-id targets (csv/npz readers map labels to 0..K-1)
        "is_classification": _TARGET_KINDS[kind] == "class_index",
        "model_type": spec.model.type,
        "input_kind": input_kind(spec),
        "causal": effective_causal(spec),
        # custom models: the user's class, its file's text and its constructor arguments
        **_custom_model(spec),
        "activation_class": _ACTIVATION_CLASSES[spec.model.activation],
        "data_source": spec.data.source,
        "image_source": spec.data.source in ("image_folder", "torchvision"),
        **_preprocessing(spec, kind),
        "input_shape": input_shape,
        "input_dim": input_dim,
        "num_outputs": _num_outputs(spec, kind, input_dim),
        "optimizer_class": _OPTIMIZER_CLASSES[spec.optimizer.name],
        "loss": loss,
        "loss_class": _LOSS_CLASSES[loss],
        "metrics": resolved_metrics(spec),
        "scheduler": scheduler.name,
        "scheduler_interval": _scheduler_interval(scheduler.name),
        "max_lr": scheduler.max_lr if scheduler.max_lr is not None else 10 * spec.optimizer.lr,
        "has_val": spec.data.val_split > 0,
        "has_test": spec.data.test_split > 0,
        "early_stopping": spec.trainer.early_stopping.enabled and spec.data.val_split > 0,
        "fsdp": spec.trainer.strategy == "fsdp",
        "checkpointing": spec.trainer.checkpoint.enabled,
        "best_checkpoint": spec.trainer.checkpoint.enabled and spec.data.val_split > 0,
        "extra_loggers": [name for name in ("wandb", "mlflow") if getattr(spec.logging, name)],
        "config_limits": config_limits(spec),
        # the values a monitor may watch, each with the mode that fits it
        "monitor_modes": {
            "val_loss": "min",
            **{f"val_{name}": METRIC_MODES[name] for name in resolved_metrics(spec)},
        },
        "requirements": dict(REQUIREMENTS),
    }


def cookiecutter_context(spec: Spec, style: str) -> dict[str, Any]:
    """The `cookiecutter` variable: what cookiecutter.json holds for the default spec.

    Everything lives under `_project` because cookiecutter copies `_`-prefixed
    values verbatim; other values would be rendered as templates (and lists
    would become choice prompts).
    """
    context = build_context(spec, style)
    return {
        "project_slug": context["project_slug"],
        "package_name": context["package_name"],
        # public, so that cookiecutter and cruft record it (the `project` filter derives the
        # context again from a spec that differs from `_project`'s)
        "spec": spec_json(context["spec"]),
        "_project": context,
        "_extensions": ["local_extensions.ScaffoldFilters"],
        "_jinja2_env_vars": {"trim_blocks": True, "lstrip_blocks": True},
    }


def cookiecutter_json(style: str) -> dict[str, Any]:
    """templates/<style>/cookiecutter.json: the default spec's context, with the package name's
    default following the slug typed at cookiecutter's prompt."""
    context = cookiecutter_context(Spec(), style)
    return {**context, "package_name": "{{ cookiecutter.project_slug|replace('-', '_') }}"}


def spec_json(spec: dict[str, Any]) -> str:
    """The spec as one line of JSON that cookiecutter renders unchanged: it renders every
    public variable as a Jinja template (and a dict's numbers as text), and JSON's own syntax
    never opens a Jinja tag, so only `{` inside strings is written as an escape."""
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    for tag in ("{{", "{%", "{#"):
        text = text.replace(tag, "\\u007b" + tag[1])
    return text
