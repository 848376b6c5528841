"""Cross-field checks: fields that are each valid but do not work together.

Each rule raises SpecError at the field that is most likely wrong and names the other
field (with its line, or "(default)") in the message, so both can be found. `check_rules`
runs every rule and returns all their errors; a rule reports at most one conflict (its later
checks often assume the earlier ones passed). A rule that reads a field which failed its own
checks is skipped, so one bad value is one error, not a cascade of conflicts with the default
that stands in for it; and the fields a failed rule read count as failed for the rules after
it, which may assume that the earlier rules passed.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from torch_scaffold.errors import SpecError
from torch_scaffold.spec.build import Locations
from torch_scaffold.spec.custom_model import CustomModelError, read_custom_model
from torch_scaffold.spec.derived import (
    FILE_SOURCES,
    IMAGE_SOURCES,
    INPUT_LAYOUTS,
    INPUT_RANKS,
    METRIC_MODES,
    SEQUENCE_MODELS,
    TOKEN_SOURCES,
    TOKEN_TASKS,
    allowed_metrics,
    effective_causal,
    effective_input_shape,
    effective_loss,
    input_kind,
    monitor_names,
    steps_per_epoch,
    task_kind,
    tasks_for_loss,
    tasks_for_metric,
    tasks_for_model,
)
from torch_scaffold.spec.messages import one_of, show_text
from torch_scaffold.spec.names import dependency_clash, project_names
from torch_scaffold.spec.schema import LOSSES, Spec


class _InvalidInput(Exception):
    """A rule read a field that failed its own checks."""


class _Reader:
    """A read-only view of the spec (or one of its sections) for the rules: reading a field
    in `invalid` (or a field of an invalid section) raises _InvalidInput; every field read
    is added to `reads`."""

    __slots__ = ("_invalid", "_path", "_reads", "_target")

    def __init__(self, target: Any, path: str, invalid: set[str], reads: set[str]):
        self._target, self._path, self._invalid, self._reads = target, path, invalid, reads

    def __getattr__(self, name: str) -> Any:
        path = f"{self._path}.{name}" if self._path else name
        if path in self._invalid:
            raise _InvalidInput(path)
        value = getattr(self._target, name)
        if dataclasses.is_dataclass(value):
            return _Reader(value, path, self._invalid, self._reads)
        self._reads.add(path)
        return value


def check_rules(spec: Spec, loc: Locations) -> list[SpecError]:
    """Every rule's error, in rule order. A rule that reads a field in `loc.invalid` is
    skipped; the fields a failing rule read are added to `loc.invalid`.

    Rules see the spec through `_Reader` whether or not a field failed, so a rule that
    breaks on the view breaks on valid specs too, where the tests see it.
    """
    errors = []
    for rule in RULES:
        reads: set[str] = set()
        try:
            rule(_Reader(spec, "", loc.invalid, reads), loc)
        except SpecError as err:
            errors.append(err)
            loc.invalid |= reads  # later rules may assume this one passed
        except _InvalidInput:
            pass  # that field's problem is already reported
        except Exception:
            # A rule may rely on a check of an earlier rule that failed or was skipped (say,
            # one that stopped at its first conflict before it read this field). The spec is
            # already known to be bad then: the problems found so far are the report, and
            # the rule runs again once they are fixed. On a spec with no problem so far
            # this is a bug, and it is raised.
            if not loc.invalid:
                raise
    return errors


def _fail(loc: Locations, path: str, message: str, hint: str) -> None:
    # `where` already names the blamed field, so a message that opens with it drops it
    message = message.removeprefix(loc.describe(path) + " ")
    raise SpecError(message, where=loc.where(path), hint=hint)


def _first_set(loc: Locations, *paths: str) -> str:
    """Of two conflicting fields, blame one the user wrote (a default is rarely the mistake)."""
    return next((p for p in paths if loc.is_set(p)), paths[0])


def name_is_usable(spec: Spec, loc: Locations) -> None:
    """`name` contains an ASCII letter or digit (the folder and package names come from it),
    and its package name is not a top-level module of a dependency, nor its folder name a
    dependency's distribution name (such as `packaging`, `google` or `typing-extensions`, of the
    project's requirements or theirs): the package would shadow that module, and
    `pip install -e .` would replace that distribution. (A package name that is a keyword, a
    standard-library module, a name the project itself uses such as `train`, `build` or `dist`,
    or a folder it writes runs to, `outputs`, `lightning_logs` or `mlruns`, gets `_project`
    appended: `name: outputs` gives the package `outputs_project`.)
    """
    slug, _ = project_names(spec)
    if not slug:
        _fail(
            loc,
            "name",
            f"{show_text(spec.name)} has no ASCII letters or digits to build a folder name from",
            "add ASCII letters or digits to the name, e.g. `my-classifier`",
        )
    clash = dependency_clash(spec.name)
    if clash is not None:
        what, distribution = clash
        if what.startswith("the module"):
            via = "" if what.endswith(distribution.replace("-", "_")) else f" (of {distribution})"
            problem = f"as a package would shadow {what}{via}"
        else:
            problem = f"as a distribution would replace {distribution} (pip install -e .)"
        _fail(
            loc,
            "name",
            f"{show_text(spec.name)} {problem}, which the generated project's requirements"
            " install",
            f"pick another name, e.g. `{slug}-model`",
        )


def _item_where(loc: Locations, path: str, index: int) -> str:
    """Where item `index` of the list at `path` was written (its own line when known)."""
    node = loc.nodes.get(path)
    if node is not None and node.kind == "seq" and index < len(node.value):
        return node.value[index].where(f"{path}[{index}]")
    return loc.where(path)


def model_fits_task(spec: Spec, loc: Locations) -> None:
    """`model.type` can be built for `task`: token tasks (sequence_classification,
    language_modelling) need rnn, transformer or custom; reconstruction needs mlp or custom;
    language_modelling needs a causal model (no bidirectional rnn, no `model.causal: false`);
    a transformer's `model.embedding_dim` divides by `model.num_heads`.
    """
    model, task = spec.model, spec.task
    if task not in tasks_for_model(model.type):
        fitting = [
            m for m in ("mlp", "cnn", "resnet", "rnn", "transformer") if task in tasks_for_model(m)
        ]
        _fail(
            loc,
            _first_set(loc, "model.type", "task"),
            f"a {model.type} cannot be built for {loc.describe('task')} {task}"
            + (" (its examples are token sequences)" if task_kind(task) in TOKEN_TASKS else ""),
            f"use model.type {one_of(fitting + ['custom'])} for {task}",
        )
    if task_kind(task) == "language_modelling":
        if model.type == "rnn" and model.bidirectional:
            _fail(
                loc,
                _first_set(loc, "model.bidirectional", "task"),
                f"a bidirectional rnn sees the tokens it must predict, but"
                f" {loc.describe('task')} is language_modelling",
                "set model.bidirectional: false for language modelling",
            )
        if model.type == "transformer" and not effective_causal(spec):
            _fail(
                loc,
                _first_set(loc, "model.causal", "task"),
                f"is false, so each position sees the tokens it must predict, but"
                f" {loc.describe('task')} is language_modelling",
                "delete model.causal (language modelling makes the transformer causal)",
            )
    if model.type == "transformer" and model.embedding_dim % model.num_heads:
        _fail(
            loc,
            _first_set(loc, "model.num_heads", "model.embedding_dim"),
            f"{loc.describe('model.embedding_dim')} {model.embedding_dim} does not divide into"
            f" {loc.describe('model.num_heads')} {model.num_heads} attention heads",
            "choose num_heads that divides embedding_dim, e.g. embedding_dim: 64, num_heads: 4",
        )


def spec_folder(loc: Locations) -> Path:
    """Where relative paths in the spec start: the spec file's folder (else the cwd)."""
    source = Path(loc.origin.source)
    return source.parent.resolve() if source.is_file() else Path.cwd()


def custom_model_is_usable(spec: Spec, loc: Locations) -> None:
    """`model.type: custom` needs `model.source` (`path/to/file.py:ClassName`, relative to the
    spec file) naming a top-level class of that file which subclasses nn.Module (the file is
    parsed and compiled, never run or imported; a UTF-8 byte order mark is fine) and whose
    constructor accepts `model.args`; the class is not named like something the generated
    model.py defines or imports (nn, torch, ModelConfig, build_model, BLOCKS, annotations);
    `model.source` and `model.args` are for custom models only.
    """
    model = spec.model
    if model.type != "custom":
        for name in ("source", "args"):
            if loc.is_set(f"model.{name}") and getattr(model, name):
                _fail(
                    loc,
                    f"model.{name}",
                    f"is only used by custom models, but {loc.describe('model.type')} is"
                    f" {model.type}",
                    f"set model.type: custom, or delete model.{name}",
                )
        return
    if model.source is None:
        _fail(
            loc,
            "model.type",
            "custom needs model.source, which is not set",
            "add `source: path/to/file.py:ClassName` under `model:`",
        )
    try:
        read_custom_model(model.source, spec_folder(loc), model.args)
    except CustomModelError as err:
        _fail(loc, f"model.{err.field}", err.message, err.hint)


def model_fits_data(spec: Spec, loc: Locations) -> None:
    """Image models (cnn, resnet) need images: not csv data, and `data.input_shape` as
    [channels, height, width] (mlp: [features]; rnn and transformer on float sequences:
    [steps, features]; token tasks take `data.seq_len` (text: `data.block_size`) instead;
    image sources give [channels, height, width] to any model), with height and width of at
    least 2^(number of `model.channels`), since each conv block (resnet: each stage after the
    first) halves them.
    """
    model = spec.model.type
    kind = input_kind(spec)
    if kind == "images" and spec.data.source == "csv":
        _fail(
            loc,
            _first_set(loc, "model.type", "data.source"),
            f"a {model} needs image-shaped examples, but {loc.describe('data.source')} is csv"
            " (flat rows)",
            "use model.type: mlp for csv data, or save the images in an npz file",
        )
    shape = spec.data.input_shape
    if shape is not None and kind == "tokens":
        _fail(
            loc,
            "data.input_shape",
            f"is set, but {loc.describe('task')} {spec.task} reads token ids of length"
            + (" data.block_size" if spec.data.source in TOKEN_SOURCES else " data.seq_len"),
            "delete data.input_shape and set "
            + (
                "data.block_size"
                if spec.data.source in TOKEN_SOURCES
                else "data.seq_len (and data.vocab_size)"
            ),
        )
    if shape is not None and model != "custom" and len(shape) != INPUT_RANKS[kind]:
        layout = INPUT_LAYOUTS[kind]
        example = {"features": "[20]", "sequences": "[16, 8]", "images": "[1, 28, 28]"}[kind]
        _fail(
            loc,
            "data.input_shape",
            f"has {len(shape)} value{'s' if len(shape) != 1 else ''}, but"
            f" {loc.describe('model.type')} {model}"
            + (
                f" with {loc.describe('data.source')} {spec.data.source}"
                if spec.data.source in IMAGE_SOURCES
                else ""
            )
            + f" needs {layout}",
            f"write data.input_shape as {layout}, e.g. {example}",
        )
    if model in ("cnn", "resnet"):  # an mlp flattens images: no halving
        full = effective_input_shape(spec)
        blocks = len(spec.model.channels) if model == "cnn" else len(spec.model.channels) - 1
        if full is not None and min(full[1:]) < 2**blocks:
            what = "conv blocks" if model == "cnn" else "stages after the first"
            _fail(
                loc,
                _first_set(loc, "model.channels", "data.input_shape"),
                f"{blocks} {what} each halve the image, but"
                f" {loc.describe('data.input_shape')} is {full[1]}x{full[2]}; it needs at"
                f" least {2**blocks}x{2**blocks}",
                "use fewer entries in model.channels or a larger data.input_shape",
            )


def sources_fit_model_and_task(spec: Spec, loc: Locations) -> None:
    """Image sources (image_folder, torchvision) give class labels and feed an mlp (which
    flattens each image) or a cnn, with 1 (grey) or 3 (RGB) channels and `data.image_mean`/`data.image_std` of one value
    or one per channel; a `text` source yields token ids for a sequence model (rnn,
    transformer) and a language-modelling task.
    """
    data, model = spec.data, spec.model.type
    if data.source in IMAGE_SOURCES:
        if spec.task == "regression":
            _fail(
                loc,
                _first_set(loc, "task", "data.source"),
                f"regression needs numeric targets, but {loc.describe('data.source')}"
                f" {data.source} labels each image with its class",
                "use a classification task with image data, or npz/npy arrays for regression",
            )
        if model in SEQUENCE_MODELS:
            _fail(
                loc,
                _first_set(loc, "model.type", "data.source"),
                f"model {model} reads token sequences, but {loc.describe('data.source')}"
                f" {data.source} gives images",
                "use model.type: cnn (or mlp, which flattens each image) for image data",
            )
        channels = effective_input_shape(spec)[0]
        if channels not in (1, 3):
            _fail(
                loc,
                "data.input_shape",
                f"asks for {channels} channels, but {loc.describe('data.source')}"
                f" {data.source} loads images as grey (1) or RGB (3)",
                "use [1, height, width] or [3, height, width]",
            )
        if (data.image_mean is None) != (data.image_std is None):
            _fail(
                loc,
                _first_set(loc, "data.image_mean", "data.image_std"),
                "data.image_mean and data.image_std are computed from the training split"
                " together, but only one of them is null",
                "set both to null (statistics of the training images), or give both",
            )
        for name in ("image_mean", "image_std"):
            values = getattr(data, name) or (0.0,)
            if len(values) not in (1, channels):
                _fail(
                    loc,
                    f"data.{name}",
                    f"has {len(values)} values, but {loc.describe('data.input_shape')} has"
                    f" {channels} channel{'s' if channels != 1 else ''}",
                    f"give one value for all channels or {channels}",
                )
    if data.source in TOKEN_SOURCES:
        if model not in SEQUENCE_MODELS:
            _fail(
                loc,
                _first_set(loc, "data.source", "model.type"),
                f"{data.source} gives token sequences, but {loc.describe('model.type')} is"
                f" {model}, which does not read them",
                f"use model.type: {one_of(SEQUENCE_MODELS)} with text data",
            )
        if task_kind(spec.task) != "language_modelling":
            _fail(
                loc,
                _first_set(loc, "data.source", "task"),
                f"{data.source} data trains next-token prediction, but {loc.describe('task')}"
                f" is {spec.task}",
                "use task: language_modelling with text data",
            )


def loss_and_metrics_fit_task(spec: Spec, loc: Locations) -> None:
    """`loss` and `metrics` fit `task`: cross_entropy for multiclass (classification),
    sequence_classification and language_modelling; bce_with_logits for binary and
    multilabel; mse, l1, smooth_l1 for regression and reconstruction. Metrics: see the
    table of defaults above. No metric is listed twice.
    """
    task = loc.describe("task")
    if spec.loss != "auto" and spec.task not in tasks_for_loss(spec.loss):
        fitting = [loss for loss in LOSSES if loss != "auto" and spec.task in tasks_for_loss(loss)]
        _fail(
            loc,
            _first_set(loc, "loss", "task"),
            f"loss {spec.loss} is for {one_of(tasks_for_loss(spec.loss))}, but {task} is"
            f" {spec.task}",
            f"use loss: auto, or a loss for the task ({one_of(fitting)})",
        )
    for i, metric in enumerate(spec.metrics or ()):
        if metric in spec.metrics[:i]:
            raise SpecError(
                f"lists {metric} twice",
                where=_item_where(loc, "metrics", i),
                hint="list each metric once",
            )
        if metric not in allowed_metrics(spec.task):
            raise SpecError(
                f"metric {metric} does not fit {task} {spec.task}; {metric} is for"
                f" {one_of(tasks_for_metric(metric))}",
                where=_item_where(loc, "metrics", i),
                hint=f"use metrics for {spec.task} ({one_of(allowed_metrics(spec.task))}),"
                " or delete `metrics` to get the default",
            )


# The tasks whose targets the file readers can produce (class ids, 0/1 or values, and for
# npz any [N, labels] array); token and reconstruction tasks use synthetic data for now.
FILE_SOURCE_TASKS = {
    "csv": ("multiclass", "binary", "regression"),
    "npz": ("multiclass", "binary", "multilabel", "regression"),
    "npy": ("multiclass", "binary", "multilabel", "regression"),
    # one class index per image (the folder name, or the dataset's label)
    "image_folder": ("multiclass",),
    "torchvision": ("multiclass",),
    "text": ("language_modelling",),
}
# what each file source holds, for the message when its task does not fit
_FILE_SOURCE_HOLDS = {
    "csv": "one target column",
    "image_folder": "one class label per image",
    "torchvision": "one class label per image",
    "text": "token sequences for next-token prediction",
}


def file_data_fits_task(spec: Spec, loc: Locations) -> None:
    """csv data serves multiclass (classification), binary (0/1 targets) and regression;
    npz and npy data also multilabel ([examples, labels] 0/1 targets); image_folder and
    torchvision data multiclass (classification); text data language_modelling.
    """
    tasks = FILE_SOURCE_TASKS.get(spec.data.source)
    if tasks is not None and task_kind(spec.task) not in tasks:
        held = _FILE_SOURCE_HOLDS.get(spec.data.source, "a target array")
        _fail(
            loc,
            _first_set(loc, "data.source", "task"),
            f"{spec.data.source} files hold {held}, which does not fit"
            f" {loc.describe('task')} {spec.task}",
            f"use data.source: synthetic for {spec.task}, or a task such as " + one_of(tasks),
        )


def data_source_is_complete(spec: Spec, loc: Locations) -> None:
    """Every source but synthetic needs `data.path`, npy also `data.targets_path`; npz reads
    its inputs from one array, so `data.features` names at most one key; `data.features` does
    not repeat a column or include `data.target`.
    """
    data = spec.data
    if data.source in FILE_SOURCES and data.path is None:
        example = {
            "image_folder": "data/images",
            "torchvision": "data/torchvision",
            "text": "data/input.txt",
        }.get(data.source, f"data/train.{data.source}")
        _fail(
            loc,
            "data.source",
            f"{data.source} data needs data.path, which is not set",
            f"add `path: {example}` under `data:`",
        )
    if data.source == "npy" and data.targets_path is None:
        _fail(
            loc,
            "data.source",
            "npy data needs data.targets_path (the targets array), which is not set",
            "add `targets_path: data/y.npy` under `data:` (inputs stay in data.path)",
        )
    if data.source == "npz" and data.features is not None and len(data.features) != 1:
        _fail(
            loc,
            "data.features",
            f"names {len(data.features)} arrays, but {loc.describe('data.source')} npz reads"
            " its inputs from one array",
            "give one array key, e.g. features: [x]",
        )
    if data.features:
        seen = set()
        for i, column in enumerate(data.features):
            if column == data.target:
                _fail(
                    loc,
                    "data.features",
                    f"includes the target {show_text(column)} ({loc.describe('data.target')})",
                    "remove the target from data.features",
                )
            if column in seen:
                _fail(loc, "data.features", f"lists {show_text(column)} twice", "list it once")
            seen.add(column)


def splits_leave_data(spec: Spec, loc: Locations) -> None:
    """`data.val_split + data.test_split` is below 0.9; for synthetic data every split that is
    not 0 gets at least one of the `data.num_samples` examples.
    """
    data = spec.data
    if data.val_split + data.test_split >= 0.9:
        _fail(
            loc,
            _first_set(loc, "data.test_split", "data.val_split"),
            f"{loc.describe('data.val_split')} {data.val_split} + {loc.describe('data.test_split')}"
            f" {data.test_split} leaves under 10% of the data for training",
            "keep val_split + test_split below 0.9",
        )
    if data.source != "synthetic":
        return
    for part in ("val_split", "test_split"):
        fraction = getattr(data, part)
        if fraction > 0 and int(data.num_samples * fraction) < 1:
            _fail(
                loc,
                _first_set(loc, f"data.{part}", "data.num_samples"),
                f"{fraction} of {loc.describe('data.num_samples')} {data.num_samples} is less"
                " than one example",
                f"raise data.num_samples or data.{part} (or set it to 0 to skip that split)",
            )


def monitors_exist(spec: Spec, loc: Locations) -> None:
    """An enabled early stopping or checkpoint `monitor`, and the plateau scheduler's
    `scheduler.monitor`, is `val_loss` or `val_<metric>` for a logged metric, its `mode`
    matches that value (max for accuracy, f1, precision, recall, auroc and r2; min for the
    loss, mse, mae and perplexity), and `data.val_split` is above 0 so there is a validation
    set to watch.
    """
    names = monitor_names(spec)
    # (section, its settings, the field that switches the watching on)
    watchers = [
        (f"trainer.{s}", getattr(spec.trainer, s), f"trainer.{s}.enabled")
        for s in ("early_stopping", "checkpoint")
        if getattr(spec.trainer, s).enabled
    ]
    if spec.scheduler.name == "plateau":
        watchers.append(("scheduler", spec.scheduler, "scheduler.name"))
    for prefix, config, switch in watchers:
        if config.monitor not in names:
            _fail(
                loc,
                f"{prefix}.monitor",
                f"{show_text(config.monitor)} is not logged; the monitor can be"
                f" {one_of(names)} (from {loc.describe('metrics')} and task {spec.task})",
                f"use one of: {one_of(names)}",
            )
        better = METRIC_MODES[config.monitor[len("val_") :]]
        if config.mode != better:
            direction = "higher" if better == "max" else "lower"
            _fail(
                loc,
                _first_set(loc, f"{prefix}.mode", f"{prefix}.monitor"),
                f"{loc.describe(prefix + '.mode')} {config.mode} does not fit"
                f" {loc.describe(prefix + '.monitor')}"
                f" {config.monitor}, which is better when {direction}",
                f"use mode: {better}",
            )
        if spec.data.val_split == 0:
            switch_off = (
                "use another scheduler" if prefix == "scheduler" else f"set {switch}: false"
            )
            _fail(
                loc,
                _first_set(loc, "data.val_split", switch),
                f"{loc.describe('data.val_split')} is 0, so there is no validation set, but"
                f" {loc.describe(switch)} watches {config.monitor}",
                f"set data.val_split above 0, or {switch_off}",
            )


def trainer_fits_hardware(spec: Spec, loc: Locations) -> None:
    """`trainer.precision: 16-mixed` needs a GPU, so not with `trainer.accelerator: cpu`
    (bf16-mixed works on cpu); mps has one device on one machine.
    """
    trainer = spec.trainer
    if trainer.precision == "16-mixed" and trainer.accelerator == "cpu":
        _fail(
            loc,
            _first_set(loc, "trainer.precision", "trainer.accelerator"),
            f"precision 16-mixed needs a GPU, but {loc.describe('trainer.accelerator')} is cpu",
            "use precision: bf16-mixed on cpu, or accelerator: auto/cuda",
        )
    if trainer.accelerator == "mps" and trainer.devices > 1:
        _fail(
            loc,
            _first_set(loc, "trainer.devices", "trainer.accelerator"),
            f"{trainer.devices} devices requested, but {loc.describe('trainer.accelerator')}"
            " mps has exactly one",
            "use devices: 1 with mps",
        )
    if trainer.accelerator == "mps" and trainer.num_nodes > 1:
        _fail(
            loc,
            _first_set(loc, "trainer.num_nodes", "trainer.accelerator"),
            f"{trainer.num_nodes} nodes requested, but {loc.describe('trainer.accelerator')}"
            " mps cannot train across machines",
            "use num_nodes: 1 with mps, or accelerator: auto/cuda",
        )


def sharding_is_usable(spec: Spec, loc: Locations) -> None:
    """`trainer.activation_checkpointing` is an FSDP option."""
    trainer = spec.trainer
    if trainer.activation_checkpointing and trainer.strategy != "fsdp":
        _fail(
            loc,
            "trainer.activation_checkpointing",
            f"true needs FSDP, but {loc.describe('trainer.strategy')} is {trainer.strategy}",
            "set trainer.strategy: fsdp, or activation_checkpointing: false",
        )


def scheduler_fits_optimizer(spec: Spec, loc: Locations) -> None:
    """With cosine schedules `scheduler.eta_min` is below `optimizer.lr`; multistep
    `scheduler.milestones` increase; warmup_cosine's `scheduler.warmup_steps` is shorter than
    training (known for synthetic data); plateau's `scheduler.gamma` is below 1;
    `optimizer.nesterov` is for sgd with momentum.
    """
    scheduler, lr = spec.scheduler, spec.optimizer.lr
    optimizer = spec.optimizer
    if optimizer.nesterov and (optimizer.name != "sgd" or optimizer.momentum == 0):
        other = "optimizer.name" if optimizer.name != "sgd" else "optimizer.momentum"
        value = optimizer.name if optimizer.name != "sgd" else 0
        _fail(
            loc,
            "optimizer.nesterov",
            f"Nesterov momentum needs sgd with momentum above 0, but {loc.describe(other)}"
            f" is {value}",
            "set optimizer.nesterov: false, or use name: sgd with momentum above 0",
        )
    if scheduler.name == "multistep":
        milestones = scheduler.milestones
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            _fail(
                loc,
                "scheduler.milestones",
                f"{list(milestones)} does not increase",
                "list the epochs in increasing order, each once",
            )
    total = steps_per_epoch(spec)
    if scheduler.name == "warmup_cosine" and total is not None:
        total *= spec.trainer.max_epochs
        if scheduler.warmup_steps >= total:
            _fail(
                loc,
                _first_set(loc, "scheduler.warmup_steps", "trainer.max_epochs"),
                f"{loc.describe('scheduler.warmup_steps')} {scheduler.warmup_steps} is not shorter"
                f" than training: {loc.describe('trainer.max_epochs')} {spec.trainer.max_epochs}"
                f" make {total} optimizer steps",
                f"use fewer warmup_steps (below {total}) or more epochs",
            )
    if scheduler.name == "plateau" and scheduler.gamma >= 1:
        # ReduceLROnPlateau multiplies the rate by gamma and refuses a factor of 1 or more
        _fail(
            loc,
            _first_set(loc, "scheduler.gamma", "scheduler.name"),
            f"{scheduler.gamma} is not below 1, and {loc.describe('scheduler.name')} plateau"
            " multiplies the learning rate by gamma to reduce it",
            "set scheduler.gamma below 1 (0.1 is common)",
        )
    if scheduler.name in ("cosine", "warmup_cosine") and scheduler.eta_min >= lr:
        _fail(
            loc,
            _first_set(loc, "scheduler.eta_min", "optimizer.lr"),
            f"{loc.describe('scheduler.eta_min')} {scheduler.eta_min} is not below"
            f" {loc.describe('optimizer.lr')} {lr}, so the cosine schedule cannot decay",
            "set scheduler.eta_min below the learning rate (0 is common)",
        )


# The sources whose examples are plain numeric arrays: the model's first layer scales them.
TABULAR_SOURCES = ("csv", "npz", "npy")
CLASS_WEIGHT_TASKS = ("binary", "multiclass", "multilabel", "sequence_classification")


def preprocessing_fits_data(spec: Spec, loc: Locations) -> None:
    """`data.normalize` and `data.missing` apply to csv/npz/npy data (other sources have their
    own scaling: image_mean/image_std, or token ids); `data.class_weights: balanced` needs a
    task with classes or labels."""
    data = spec.data
    if data.augment and data.source not in IMAGE_SOURCES:
        _fail(
            loc,
            "data.augment",
            f"transforms images, but {loc.describe('data.source')} is {data.source}",
            "remove data.augment, or use data.source: image_folder or torchvision",
        )
    defaults = {"normalize": "standard", "missing": "error"}  # what other sources do anyway
    for name, default in defaults.items():
        path = f"data.{name}"
        if getattr(data, name) != default and data.source not in TABULAR_SOURCES:
            _fail(
                loc,
                path,
                f"applies to csv, npz and npy data, but {loc.describe('data.source')} is"
                f" {data.source}",
                f"remove {path}"
                + (
                    " (images are scaled with data.image_mean and data.image_std)"
                    if data.source in IMAGE_SOURCES
                    else ""
                ),
            )
    if data.class_weights != "none" and task_kind(spec.task) not in CLASS_WEIGHT_TASKS:
        _fail(
            loc,
            _first_set(loc, "data.class_weights", "task"),
            f"data.class_weights {data.class_weights} weighs classes, but"
            f" {loc.describe('task')} {spec.task} has none",
            "remove data.class_weights, or use a task such as " + one_of(CLASS_WEIGHT_TASKS),
        )
    loss = effective_loss(spec)
    if data.class_weights != "none" and loss not in ("cross_entropy", "bce_with_logits"):
        _fail(
            loc,
            _first_set(loc, "data.class_weights", "loss"),
            f"data.class_weights {data.class_weights} weighs cross_entropy or bce_with_logits,"
            f" but {loc.describe('loss')} is {loss}",
            "use loss: auto, or remove data.class_weights",
        )


RULES = (
    name_is_usable,
    model_fits_task,
    custom_model_is_usable,
    model_fits_data,
    sources_fit_model_and_task,
    loss_and_metrics_fit_task,
    file_data_fits_task,
    data_source_is_complete,
    splits_leave_data,
    monitors_exist,
    trainer_fits_hardware,
    sharding_is_usable,
    scheduler_fits_optimizer,
    preprocessing_fits_data,
)
