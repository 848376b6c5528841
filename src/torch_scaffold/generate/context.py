"""The values the templates see, derived from a Spec (pure).

The templates never read the Spec object: they get plain JSON-able data, the
same shape that `templates/<style>/cookiecutter.json` holds for the default
spec, so cookiecutter itself can render the templates too.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import re
from typing import Any

from torch_scaffold import __version__
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
    "pytest": "pytest>=8",
}

_ACTIVATION_CLASSES = {
    "relu": "nn.ReLU",
    "gelu": "nn.GELU",
    "silu": "nn.SiLU",
    "tanh": "nn.Tanh",
    "leaky_relu": "nn.LeakyReLU",
}
_OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
_LOSS_CLASSES = {
    "cross_entropy": "nn.CrossEntropyLoss",
    "mse": "nn.MSELoss",
    "l1": "nn.L1Loss",
    "smooth_l1": "nn.SmoothL1Loss",
}
# Lightning steps "epoch" schedulers after validation, "step" ones after each optimizer step.
_SCHEDULER_INTERVALS = {"none": None, "step": "epoch", "cosine": "epoch", "onecycle": "step"}
# Modules a generated package must not shadow when run from the project root.
_SHADOWED = {"torch", "lightning", "pytorch_lightning", "numpy", "yaml", "tqdm", "test", "tests"}


def plain_data(value: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists, so the context is JSON (and cookiecutter.json) shaped."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    return value


def _fallback_project_names(name: str) -> tuple[str, str]:
    # TEMPORARY: used until torch_scaffold.spec provides project_names().
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "project"
    package = slug.replace("-", "_")
    if package[0].isdigit() or keyword.iskeyword(package) or package in _SHADOWED:
        package = f"project_{package}"
    return slug, package


def project_names(spec: Spec) -> tuple[str, str]:
    """(folder slug, importable package name) for the spec's project name."""
    try:
        from torch_scaffold.spec import project_names as spec_project_names
    except ImportError:
        return _fallback_project_names(spec.name)
    return spec_project_names(spec)


def resolved_loss(spec: Spec) -> str:
    if spec.loss != "auto":
        return spec.loss
    return "cross_entropy" if spec.task == "classification" else "mse"


def resolved_metrics(spec: Spec) -> list[str]:
    if spec.metrics is not None:
        return list(spec.metrics)
    return ["accuracy"] if spec.task == "classification" else ["mse", "mae"]


def resolved_input_shape(spec: Spec) -> list[int]:
    if spec.data.input_shape is not None:
        return list(spec.data.input_shape)
    return [20] if spec.model.type == "mlp" else [1, 16, 16]


def build_context(spec: Spec, style: str) -> dict[str, Any]:
    """Everything the templates need: the normalized spec plus derived names and values."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    slug, package = project_names(spec)
    input_shape = resolved_input_shape(spec)
    loss = resolved_loss(spec)
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
        "is_classification": spec.task == "classification",
        "model_type": spec.model.type,
        "activation_class": _ACTIVATION_CLASSES[spec.model.activation],
        "data_source": spec.data.source,
        "input_shape": input_shape,
        "input_dim": math.prod(input_shape),
        "num_outputs": (
            spec.data.num_classes if spec.task == "classification" else spec.data.num_targets
        ),
        "optimizer_class": _OPTIMIZER_CLASSES[spec.optimizer.name],
        "loss": loss,
        "loss_class": _LOSS_CLASSES[loss],
        "metrics": resolved_metrics(spec),
        "scheduler": scheduler.name,
        "scheduler_interval": _SCHEDULER_INTERVALS[scheduler.name],
        "max_lr": scheduler.max_lr if scheduler.max_lr is not None else 10 * spec.optimizer.lr,
        "has_val": spec.data.val_split > 0,
        "has_test": spec.data.test_split > 0,
        "early_stopping": spec.trainer.early_stopping.enabled and spec.data.val_split > 0,
        "checkpointing": spec.trainer.checkpoint.enabled,
        "best_checkpoint": spec.trainer.checkpoint.enabled and spec.data.val_split > 0,
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
        "_project": context,
        "_extensions": ["local_extensions.ScaffoldFilters"],
        "_jinja2_env_vars": {"trim_blocks": True, "lstrip_blocks": True},
    }
