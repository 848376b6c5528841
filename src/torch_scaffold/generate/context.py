"""The values the templates see, derived from a Spec (pure).

The templates never read the Spec object: they get plain JSON-able data, the
same shape that `templates/<style>/cookiecutter.json` holds for the default
spec, so cookiecutter itself can render the templates too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from typing import Any

from torch_scaffold import __version__
from torch_scaffold.errors import SpecError
from torch_scaffold.spec.derived import (
    DEFAULT_INPUT_SHAPE,
    LOSS_KINDS,
    METRIC_MODES,
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

# Ranges that the generated projects are tested with. The policy, stated in each project's
# pyproject.toml: lower bounds are the oldest releases tested; the caps on torch, Lightning and
# torchvision are the newest minor releases tested (their minor releases break APIs a project
# uses), raised by `scaffold update` once a newer torch-scaffold has tested the next ones.
REQUIREMENTS = {
    "python": ">=3.10",
    "torch": "torch>=2.2,<2.14",
    "lightning": "pytorch-lightning>=2.2,<2.7",
    "pyyaml": "PyYAML>=6,<7",
    "jsonargparse": "jsonargparse>=4.53,<5",  # the config's parser (LightningCLI's)
    "numpy": "numpy>=1.24",
    "tqdm": "tqdm>=4.60",
    "tensorboard": "tensorboard>=2.14,<3",
    "pillow": "Pillow>=9.4",
    "torchvision": "torchvision>=0.17,<0.29",
    "wandb": "wandb>=0.16,<1",
    "mlflow": "mlflow>=2.10,<4",
    "pytest": "pytest>=8",
    "pre-commit": "pre-commit>=3.5,<5",  # CI runs the linters through it, at its pinned revs
    "torchmetrics": "torchmetrics>=1.0,<2",
    "matplotlib": "matplotlib>=3.7,<4",
    # export --format onnx: torch.onnx.export(dynamo=True) needs onnx and onnxscript;
    # the project's tests check the ONNX file with onnxruntime
    "onnx": "onnx>=1.16",
    "onnxscript": "onnxscript>=0.2",
    "onnxruntime": "onnxruntime>=1.18",
}

# The generated CI's Python matrix: the oldest the project supports, the newest torch supports.
CI_PYTHONS = ["3.10", "3.14"]

_ACTIVATION_CLASSES = {
    "relu": "nn.ReLU",
    "gelu": "nn.GELU",
    "silu": "nn.SiLU",
    "tanh": "nn.Tanh",
    "leaky_relu": "nn.LeakyReLU",
}


_LOSS_CLASSES = {
    "cross_entropy": "CrossEntropyLoss",
    "bce_with_logits": "BCEWithLogitsLoss",
    "mse": "MSELoss",
    "l1": "L1Loss",
    "smooth_l1": "SmoothL1Loss",
}


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
    context = {
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
        "loss": loss,
        "metrics": resolved_metrics(spec),
        "scheduler": spec.scheduler.name,
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
        "ci_pythons": list(CI_PYTHONS),
    }
    context["config_tree"] = config_tree(spec, context)
    context["fitting_losses"] = {
        loss: _LOSS_CLASSES[loss] for loss, kinds in LOSS_KINDS.items() if kind in kinds
    }
    context["optimizer_limits"] = {
        arg: config_limits_of(f"optimizer.{arg}") for arg in ("momentum", "betas", "alpha")
    }
    context["schedule_presets"] = schedule_presets(spec)
    return context


# -- the generated config's fields: config.py's dataclasses and config.yaml are both rendered
# from this one tree --------------------------------------------------------------------------


@functools.cache
def _schema() -> dict[str, Any]:
    return dict(walk(Spec))


def _type_text(path: str, optional: bool | None) -> str:
    """The config field's Python type, from the spec schema's field at `path`."""
    info = _schema()[path]
    text = {"list": f"list[{info.item}]", "map": "dict[str, Any]"}.get(info.kind, info.kind)
    return f"{text} | None" if (info.optional if optional is None else optional) else text


# Schedules whose length is max_epochs: they decay over the whole cap.
SCHEDULES_OVER_MAX_EPOCHS = ("cosine", "onecycle", "warmup_cosine")


def _max_epochs_comment(scheduler: str, early_stopping: bool) -> str:
    if scheduler in SCHEDULES_OVER_MAX_EPOCHS:
        spans = f"{scheduler} spans them all"
        return f"{spans}; early stopping may stop sooner" if early_stopping else spans
    return "a cap: early stopping usually ends the run sooner" if early_stopping else ""


def _field(
    path: str,
    value: Any,
    comment: str = "",
    *,
    optional: bool | None = None,
    limits: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """One config value: its key, Python type, default, limits (from the spec schema unless
    given) and the comment config.yaml shows beside it."""
    return {
        "name": name or path.rpartition(".")[2],
        "type": _type_text(path, optional),
        "value": plain_data(value),
        "limits": config_limits_of(path) if limits is None else limits,
        "comment": comment,
    }


def config_limits_of(path: str) -> dict[str, Any]:
    """The spec schema's limits of the field at `path` (see _LIMIT_KEYS)."""
    info = _schema()[path]
    return {
        key: plain_data(info.meta[key])
        for key in _LIMIT_KEYS
        if info.meta.get(key) is not None and info.meta.get(key) is not False
    }


def _section(name: str, cls: str, fields: list, comment: str = "", **choice: Any) -> dict:
    """A section; a chosen one (optimizer, scheduler, loss) also has `args`: the arguments of
    the class its `name` field picks, written beside name in config.yaml."""
    section = {"name": name, "class": cls, "fields": fields, "comment": comment, "args": None}
    section.update(choice)
    if section["args"] is not None:
        section["arg_defaults"] = {arg["name"]: arg["value"] for arg in section["args"]}
    return section


# The learning-rate schedules a project can switch between at run time (scheduler.name), with
# the spec fields each one reads.
SCHEDULE_ARGS = {
    "none": (),
    "step": ("step_size", "gamma"),
    "multistep": ("milestones", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("eta_min",),
    "plateau": ("monitor", "mode", "gamma", "patience"),
    "onecycle": ("max_lr", "pct_start"),
    "warmup_cosine": ("warmup_steps", "eta_min"),
}
_SCHEDULE_DOCS = {
    "none": "No schedule: the learning rate stays optimizer.lr.",
    "step": "StepLR: multiply the rate by gamma every step_size epochs.",
    "multistep": "MultiStepLR: multiply the rate by gamma at each milestone epoch.",
    "exponential": "ExponentialLR: multiply the rate by gamma after every epoch.",
    "cosine": "CosineAnnealingLR: anneal to eta_min over max_epochs.",
    "plateau": "ReduceLROnPlateau: multiply the rate by gamma when monitor stops improving.",
    "onecycle": "OneCycleLR, stepped per optimizer step (max_lr null: 10 x optimizer.lr).",
    "warmup_cosine": "Linear warm-up over warmup_steps optimizer steps, then cosine decay to"
    " eta_min.",
}
# Optimizer arguments the spec schema has limits for (any optimizer taking one is checked so).
_OPTIMIZER_ARGS = {
    "sgd": ("momentum", "nesterov"),
    "rmsprop": ("alpha", "momentum"),
    "adam": ("betas",),
    "adamw": ("betas",),
}


def schedule_presets(spec: Spec) -> list[dict[str, Any]]:
    """Each schedule's arguments with the spec's values as defaults (config.py's *Schedule
    dataclasses)."""
    return [
        {
            "name": name,
            "class": "".join(part.title() for part in name.split("_")) + "Schedule",
            "doc": _SCHEDULE_DOCS[name],
            "fields": [_field(f"scheduler.{arg}", getattr(spec.scheduler, arg)) for arg in args],
        }
        for name, args in SCHEDULE_ARGS.items()
    ]


def config_tree(spec: Spec, ctx: dict[str, Any]) -> dict[str, Any]:
    """The config's sections and fields, with types, defaults, limits and comments."""
    s, p = spec, ctx
    model_type, source, kind = p["model_type"], p["data_source"], p["task_kind"]
    model = []
    if model_type == "mlp":
        model.append(_field("model.hidden_sizes", s.model.hidden_sizes))
    elif model_type in ("cnn", "resnet"):
        model.append(_field("model.channels", s.model.channels))
        if model_type == "cnn":
            model.append(_field("model.kernel_size", s.model.kernel_size))
        else:
            model.append(_field("model.blocks_per_stage", s.model.blocks_per_stage))
    elif model_type == "rnn":
        model += [
            _field("model.cell", s.model.cell, "lstm or gru"),
            _field("model.hidden_size", s.model.hidden_size),
            _field("model.num_layers", s.model.num_layers),
            _field("model.bidirectional", s.model.bidirectional),
        ]
        if p["input_kind"] == "tokens":
            model.append(_field("model.embedding_dim", s.model.embedding_dim))
    elif model_type == "transformer":
        model += [
            _field("model.embedding_dim", s.model.embedding_dim),
            _field("model.num_heads", s.model.num_heads),
            _field("model.ff_size", s.model.ff_size),
            _field("model.num_layers", s.model.num_layers),
            _field("model.causal", p["causal"], optional=False),
        ]
    if model_type == "custom":
        model.append(
            _field("model.args", p["custom_args"], f"keyword arguments of {p['custom_class']}")
        )
    else:
        model.append(_field("model.dropout", s.model.dropout))

    data = []
    if source == "synthetic":
        if p["input_kind"] == "tokens":
            data += [
                _field("data.vocab_size", s.data.vocab_size),
                _field("data.seq_len", s.data.seq_len),
            ]
        else:
            data.append(_field("data.input_shape", p["input_shape"], optional=False))
        if kind in ("multiclass", "multilabel", "sequence_classification"):
            data.append(_field("data.num_classes", s.data.num_classes))
        elif kind == "regression":
            data.append(_field("data.num_targets", s.data.num_targets))
        data.append(_field("data.num_samples", s.data.num_samples))
    else:
        data.append(_field("data.path", s.data.path, source))
    if source in ("csv", "npz"):
        data += [
            _field("data.target", s.data.target),
            _field("data.features", s.data.features, optional=True),
        ]
    elif source == "npy":
        data.append(_field("data.targets_path", s.data.targets_path))
    elif source == "text":
        data += [
            _field("data.tokenizer", s.data.tokenizer, "char or whitespace"),
            _field("data.block_size", s.data.block_size),
        ]
    elif p["image_source"]:
        if source == "torchvision":
            data += [
                _field("data.dataset", s.data.dataset),
                _field("data.download", s.data.download, "fetch into path when missing"),
            ]
        data += [
            _field(
                "data.input_shape",
                p["input_shape"],
                "images are resized to [channels, height, width]"
                + (
                    "; mean and std per channel from the training images"
                    if p["image_stats"]
                    else ""
                ),
                optional=False,
            ),
        ]
        if not p["image_stats"]:
            data += [
                _field("data.image_mean", s.data.image_mean),
                _field("data.image_std", s.data.image_std),
            ]
        if p["augment"]:
            data += [
                _field(
                    "data.augment",
                    s.data.augment,
                    "training images only: random crop, flip, colour jitter",
                ),
                _field(
                    "data.augment_crop_scale",
                    s.data.augment_crop_scale,
                    "smallest fraction of the area a crop keeps",
                ),
                _field("data.augment_flip", s.data.augment_flip),
                _field(
                    "data.augment_jitter",
                    s.data.augment_jitter,
                    "brightness, contrast and saturation",
                ),
            ]
    limits = p["config_limits"]  # normalize, missing, class_weights: what the code can switch
    if p["scale_inputs"]:
        data.append(
            _field(
                "data.normalize",
                s.data.normalize,
                "input scaling fitted on the training split: standard or minmax",
                limits=limits["data.normalize"],
            )
        )
    if source in ("csv", "npz", "npy"):
        missing = (
            "filled in by the model: mean or median"
            if p["fill_missing"]
            else "empty cells and NaN: error or drop (the row)"
        )
        data.append(_field("data.missing", s.data.missing, missing, limits=limits["data.missing"]))
    if p["class_weights"]:
        data.append(
            _field(
                "data.class_weights",
                s.data.class_weights,
                "balanced or none",
                limits=limits["data.class_weights"],
            )
        )
    data += [
        _field("data.batch_size", s.data.batch_size),
        _field("data.val_split", s.data.val_split),
        _field("data.test_split", s.data.test_split),
    ]
    if source != "text":  # text is split in order
        data.append(
            _field("data.split_seed", s.data.split_seed, "the same split for any trainer.seed")
        )
    data += [
        _field("data.num_workers", s.data.num_workers),
        _field("data.pin_memory", s.data.pin_memory, "used on CUDA only"),
        _field("data.persistent_workers", s.data.persistent_workers, "used with num_workers > 0"),
    ]

    optimizer_name = s.optimizer.name
    optimizer = [
        _field(
            "optimizer.name",
            optimizer_name,
            "any torch.optim optimizer: sgd, adam, adamw, rmsprop, ...",
            limits={"min_length": 1, "max_length": 100},
        ),
        _field("optimizer.lr", s.optimizer.lr),
        _field("optimizer.weight_decay", s.optimizer.weight_decay),
        _field(
            "optimizer.decay_norm_and_bias",
            s.optimizer.decay_norm_and_bias,
            "false: no decay for biases and norms",
        ),
    ]
    optimizer_args = [
        _field(f"optimizer.{arg}", getattr(s.optimizer, arg))
        for arg in _OPTIMIZER_ARGS[optimizer_name]
    ]
    scheduler = [
        _field(
            "scheduler.name",
            p["scheduler"],
            ", ".join(SCHEDULE_ARGS),
            limits={"min_length": 1, "max_length": 100},
        )
    ]
    scheduler_args = [
        _field(f"scheduler.{arg}", getattr(s.scheduler, arg))
        for arg in SCHEDULE_ARGS[p["scheduler"]]
    ]
    fitting = [loss for loss, kinds in LOSS_KINDS.items() if kind in kinds]
    loss = [
        _field(
            "loss",
            p["loss"],
            f"fits {kind}: {', '.join(fitting)}",
            limits={"min_length": 1, "max_length": 100},
            name="name",
        )
    ]

    trainer = [
        _field(
            "trainer.max_epochs",
            s.trainer.max_epochs,
            _max_epochs_comment(p["scheduler"], p["early_stopping"]),
        ),
        _field("trainer.precision", s.trainer.precision, '"32", "16-mixed" or "bf16-mixed"'),
        _field("trainer.accelerator", s.trainer.accelerator, "auto, cpu, cuda or mps"),
        _field("trainer.devices", s.trainer.devices, "per node; plain style: >1 needs torchrun"),
        _field("trainer.num_nodes", s.trainer.num_nodes),
        _field(
            "trainer.strategy",
            s.trainer.strategy,
            ("fsdp (sharded), " if p["fsdp"] else "")
            + "auto, ddp or ddp_find_unused_parameters_true",
        ),
        _field("trainer.gradient_clip_val", s.trainer.gradient_clip_val, "null: no clipping"),
        _field("trainer.gradient_clip_algorithm", s.trainer.gradient_clip_algorithm),
        _field("trainer.accumulate_grad_batches", s.trainer.accumulate_grad_batches),
        _field("trainer.log_every_n_steps", s.trainer.log_every_n_steps),
        _field("trainer.seed", s.trainer.seed),
        _field("trainer.deterministic", s.trainer.deterministic),
        _field("trainer.compile", s.trainer.compile, "true: torch.compile the model"),
    ]
    if p["fsdp"]:
        trainer.append(
            _field(
                "trainer.activation_checkpointing",
                s.trainer.activation_checkpointing,
                "fsdp: recompute activations per block",
            )
        )
    if p["early_stopping"]:
        stopping = s.trainer.early_stopping
        trainer.append(
            _section(
                "early_stopping",
                "EarlyStoppingConfig",
                [
                    _field("trainer.early_stopping.monitor", stopping.monitor),
                    _field("trainer.early_stopping.mode", stopping.mode),
                    _field("trainer.early_stopping.patience", stopping.patience),
                    _field("trainer.early_stopping.min_delta", stopping.min_delta),
                ],
            )
        )
    if p["checkpointing"]:
        checkpoint = s.trainer.checkpoint
        fields = []
        if p["best_checkpoint"]:
            fields += [
                _field("trainer.checkpoint.monitor", checkpoint.monitor),
                _field("trainer.checkpoint.mode", checkpoint.mode),
            ]
        fields.append(_field("trainer.checkpoint.save_last", checkpoint.save_last))
        trainer.append(_section("checkpoint", "CheckpointConfig", fields))

    logging = [
        _field("logging.csv", s.logging.csv),
        _field("logging.tensorboard", s.logging.tensorboard, "used when tensorboard is installed"),
    ]
    if s.logging.wandb:
        logging.append(
            _field(
                "logging.wandb",
                True,
                "offline unless WANDB_MODE is set; needs pip install -e .[wandb]",
            )
        )
        logging[-1]["limits"] = {}
    if s.logging.mlflow:
        logging.append(_field("logging.mlflow", True, "needs pip install -e .[mlflow]"))
        logging[-1]["limits"] = {}
        logging.append(_field("logging.mlflow_tracking_uri", s.logging.mlflow_tracking_uri))

    output_dir = {
        "name": "output_dir",
        "type": "str",
        "value": "outputs",
        "limits": {"min_length": 1, "max_length": 4096},
        "comment": "one folder per run: RUN/checkpoints, RUN/logs, RUN/config.yaml",
    }
    return _section(
        "",
        "Config",
        [
            output_dir,
            _section("model", "ModelConfig", model, model_type),
            _section("data", "DataConfig", data),
            _section(
                "optimizer",
                "OptimizerConfig",
                optimizer,
                args=optimizer_args,
                unknown="is not an optimizer in torch.optim",
                args_doc="the optimizer's own arguments (momentum, betas, ...), written beside"
                " name",
            ),
            _section(
                "scheduler",
                "SchedulerConfig",
                scheduler,
                args=scheduler_args,
                unknown="is not a schedule of this project",
                args_doc="the schedule's arguments (see the *Schedule classes), written beside"
                " name",
            ),
            _section(
                "loss",
                "LossConfig",
                loss,
                args=[],
                unknown=f"does not fit this project's task ({kind})",
                args_doc="the loss's own arguments (e.g. label_smoothing), written beside name",
            ),
            _section("trainer", "TrainerConfig", trainer),
            _section("logging", "LoggingConfig", logging),
        ],
    )


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
