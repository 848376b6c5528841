"""The model specification as typed values.

This module is the single source of truth for the spec: field names, types,
defaults, allowed values, ranges and one-line docs. Loading, validation, the
JSON Schema, the annotated example and docs/spec.md are all derived from it.

Each field carries metadata built by `field(...)`:
    doc                  one-line meaning, shown in `scaffold spec example` and docs
    choices              allowed values for strings (and for the items of string lists)
    min/max              numeric range, also for the items of number lists; inclusive unless
                         `exclusive_min` / `exclusive_max`
    min_items/max_items    length bounds of a list
    min_length/max_length  length bounds of a string (also for the items of string lists)
    required             must be written in a user's spec file (defaults exist for the rest)
    multiline            a string may hold line breaks; other strings must be one line
                         without control characters (they become names, keys and paths)

Every number and list has an upper bound: a spec is hand-edited, and `1e12` hidden units is a
typo that should fail in the loader, not as an out-of-memory error an hour into training.
"""

# `field` below wraps dataclasses.field (it adds the metadata), so its calls are not shared defaults.
# ruff: noqa: RUF009
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def field(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
    exclusive_min: bool = False,
    exclusive_max: bool = False,
    min_items: int | None = None,
    max_items: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    required: bool = False,
    multiline: bool = False,
    factory: Any = dataclasses.MISSING,
) -> Any:
    meta = {
        "doc": doc,
        "choices": choices,
        "min": min,
        "max": max,
        "exclusive_min": exclusive_min,
        "exclusive_max": exclusive_max,
        "min_items": min_items,
        "max_items": max_items,
        "min_length": min_length,
        "max_length": max_length,
        "required": required,
        "multiline": multiline,
    }
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


TASKS = (
    "classification",
    "binary",
    "multiclass",
    "multilabel",
    "regression",
    "sequence_classification",
    "language_modelling",
    "reconstruction",
)
MODELS = ("mlp", "cnn", "resnet", "rnn", "transformer", "custom")
RNN_CELLS = ("lstm", "gru")
ACTIVATIONS = ("relu", "gelu", "silu", "tanh", "leaky_relu")
SOURCES = ("synthetic", "csv", "npz", "npy", "image_folder", "text", "torchvision")
# torchvision datasets that share the (root, train, download) signature and classes list
TORCHVISION_DATASETS = ("MNIST", "FashionMNIST", "KMNIST", "CIFAR10", "CIFAR100")
TOKENIZERS = ("char", "whitespace")
NORMALIZERS = ("standard", "minmax", "none")
MISSING_VALUES = ("mean", "median", "drop", "error")
CLASS_WEIGHTS = ("none", "balanced")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = (
    "none",
    "step",
    "multistep",
    "exponential",
    "cosine",
    "onecycle",
    "plateau",
    "warmup_cosine",
)
LOSSES = ("auto", "cross_entropy", "bce_with_logits", "mse", "l1", "smooth_l1")
METRICS = ("accuracy", "f1", "precision", "recall", "auroc", "mse", "mae", "r2", "perplexity")
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
ACCELERATORS = ("auto", "cpu", "cuda", "mps")
# Lightning strategy names; the plain style runs them under torchrun (DDP, or FSDP2 for fsdp).
STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true", "fsdp")
MODES = ("min", "max")
CLIP_ALGORITHMS = ("norm", "value")


@dataclass(frozen=True)
class ModelSpec:
    type: str = field("mlp", doc="Model family.", choices=MODELS)
    hidden_sizes: tuple[int, ...] = field(
        (128, 64),
        doc="mlp: width of each hidden layer, input to output (reconstruction: the encoder;"
        " the last size is the bottleneck and the decoder mirrors it).",
        min=1,
        max=65536,
        min_items=1,
        max_items=64,
    )
    channels: tuple[int, ...] = field(
        (16, 32),
        doc="cnn: output channels of each conv block (conv, batch norm, pool);"
        " resnet: width of each stage (every stage after the first halves the image).",
        min=1,
        max=4096,
        min_items=1,
        max_items=16,
    )
    kernel_size: int = field(
        3, doc="cnn: convolution kernel size (odd keeps the size).", min=1, max=15
    )
    blocks_per_stage: int = field(
        2, doc="resnet: residual blocks (two 3x3 convs each) per stage.", min=1, max=64
    )
    cell: str = field("lstm", doc="rnn: recurrent cell.", choices=RNN_CELLS)
    hidden_size: int = field(64, doc="rnn: hidden units per direction and layer.", min=1, max=65536)
    num_layers: int = field(2, doc="rnn/transformer: stacked layers.", min=1, max=64)
    bidirectional: bool = field(
        False, doc="rnn: also read the sequence backwards (not for language_modelling)."
    )
    embedding_dim: int = field(
        64,
        doc="rnn: token embedding width (token inputs); transformer: model width (d_model).",
        min=1,
        max=65536,
    )
    num_heads: int = field(
        4, doc="transformer: attention heads (embedding_dim must divide by it).", min=1, max=256
    )
    ff_size: int = field(
        128, doc="transformer: width of each layer's feed-forward block.", min=1, max=262144
    )
    causal: bool | None = field(
        None,
        doc="transformer: each position attends only to earlier ones (a decoder for"
        " language_modelling). Default: true for language_modelling, false otherwise.",
    )
    dropout: float = field(
        0.1, doc="Dropout probability before each hidden/linear layer.", min=0.0, max=0.95
    )
    activation: str = field("relu", doc="Activation after each hidden layer.", choices=ACTIVATIONS)
    source: str | None = field(
        None,
        doc="custom: `path/to/file.py:ClassName`, an nn.Module subclass; the path is relative"
        " to the spec file. The file is copied into the project as custom_model.py.",
        min_length=1,
        max_length=4096,
    )
    args: dict[str, Any] = field(
        factory=dict,
        doc="custom: keyword arguments for the class's constructor (numbers, text, booleans,"
        " null or lists of those).",
        max_items=100,
    )


@dataclass(frozen=True)
class DataSpec:
    source: str = field("synthetic", doc="Where the data comes from.", choices=SOURCES)
    path: str | None = field(
        None,
        doc="csv/npz/npy/text: file to load; image_folder: folder with one subfolder per class;"
        " torchvision: dataset root folder. Relative to the project root (or absolute).",
        min_length=1,
        max_length=4096,
    )
    target: str = field(
        "target",
        doc="csv: target column; npz: array key of the targets.",
        min_length=1,
        max_length=200,
    )
    features: tuple[str, ...] | None = field(
        None,
        doc="csv: feature columns (default: every column except the target);"
        " npz: array key of the inputs (default 'x').",
        min_items=1,
        max_items=100000,
        min_length=1,
        max_length=200,
    )
    targets_path: str | None = field(
        None,
        doc="npy: file with the targets array, one row per row of the inputs in data.path.",
        min_length=1,
        max_length=4096,
    )
    input_shape: tuple[int, ...] | None = field(
        None,
        doc="Shape of one example. synthetic: [features] for mlp, [channels, height, width]"
        " for cnn/resnet, [steps, features] for rnn/transformer on float sequences"
        " (token tasks use seq_len instead). image_folder/torchvision: images are resized to"
        " [channels (1 grey or 3 RGB), height, width] (default [3, 32, 32], MNIST-like"
        " [1, 28, 28]). Default: see below.",
        min=1,
        max=65536,
        min_items=1,
        max_items=3,
    )
    image_mean: tuple[float, ...] | None = field(
        (0.5,),
        doc="image_folder/torchvision: per-channel mean subtracted from pixels in [0, 1]"
        " (one value for all channels, or one per channel). null (with image_std null):"
        " each channel's mean and std over the training split's images, computed before"
        " training (one pass over them) and kept in the model's first layer.",
        min=-10.0,
        max=10.0,
        min_items=1,
        max_items=3,
    )
    image_std: tuple[float, ...] | None = field(
        (0.5,),
        doc="image_folder/torchvision: per-channel standard deviation pixels are divided by"
        " (null: with image_mean null, from the training split).",
        min=0.0,
        max=10.0,
        exclusive_min=True,
        min_items=1,
        max_items=3,
    )
    normalize: str = field(
        "standard",
        doc="csv/npz/npy: scale every input feature with statistics of the training split,"
        " kept in the model's first layer (so checkpoints, predict and export take raw"
        " features). standard: (x - mean) / std; minmax: (x - min) / (max - min); none: raw"
        " values. Regression targets are scaled the same way and the model's outputs scaled"
        " back, so predictions are in the target's units. npz/npy images get one statistic"
        " per channel, sequences one per feature. A constant csv column is an error; a"
        " constant npz/npy feature is left unscaled.",
        choices=NORMALIZERS,
    )
    missing: str = field(
        "error",
        doc="csv/npz/npy: what an empty csv cell or a NaN does. mean/median: the model fills it"
        " with that column's value over the training split; drop: the row is left out;"
        " error: stop with the file, column and row.",
        choices=MISSING_VALUES,
    )
    class_weights: str = field(
        "none",
        doc="binary/multiclass/multilabel: balanced weighs each class by"
        " examples / (classes x its examples) in the training split, as scikit-learn's"
        " class_weight='balanced' (binary and multilabel: pos_weight = negatives / positives"
        " per label); none: every example counts the same.",
        choices=CLASS_WEIGHTS,
    )
    augment: bool = field(
        False,
        doc="image_folder/torchvision: random resized crop, horizontal flip and colour jitter"
        " (torchvision.transforms.v2) on training images; validation and test images are never"
        " changed. Needs torchvision.",
    )
    augment_crop_scale: float = field(
        0.8,
        doc="augment: smallest fraction of the image area a random crop keeps (then resized"
        " back to input_shape).",
        min=0.05,
        max=1.0,
    )
    augment_flip: bool = field(True, doc="augment: flip half the images left to right.")
    augment_jitter: float = field(
        0.2,
        doc="augment: largest relative change of brightness, contrast and saturation (0: none).",
        min=0.0,
        max=1.0,
    )
    tokenizer: str = field(
        "char",
        doc="text: split the file into characters, or into words at whitespace.",
        choices=TOKENIZERS,
    )
    block_size: int = field(
        64, doc="text: tokens per training sequence (language-model context).", min=2, max=65536
    )
    dataset: str = field(
        "MNIST",
        doc="torchvision: dataset class in torchvision.datasets.",
        choices=TORCHVISION_DATASETS,
    )
    download: bool = field(
        False, doc="torchvision: download the dataset into data.path when it is missing."
    )
    num_classes: int = field(
        3,
        doc="synthetic multiclass/sequence_classification: number of classes;"
        " multilabel: number of labels.",
        min=2,
        max=100000,
    )
    num_targets: int = field(
        1, doc="synthetic regression: number of regression outputs.", min=1, max=100000
    )
    vocab_size: int = field(
        32,
        doc="synthetic sequence_classification/language_modelling: number of distinct tokens.",
        min=2,
        max=1_000_000,
    )
    seq_len: int = field(
        32,
        doc="synthetic sequence_classification/language_modelling: tokens per example.",
        min=2,
        max=65536,
    )
    num_samples: int = field(
        2048, doc="synthetic: number of examples generated.", min=8, max=10_000_000
    )
    batch_size: int = field(64, doc="Examples per batch (per device).", min=1, max=1_000_000)
    val_split: float = field(
        0.1, doc="Fraction of the data held out for validation.", min=0.0, max=0.9
    )
    test_split: float = field(
        0.1, doc="Fraction of the data held out for the final test.", min=0.0, max=0.9
    )
    split_seed: int = field(
        42,
        doc="Seed of the train/val/test split (and of synthetic data), apart from"
        " trainer.seed: runs with different trainer.seed values train and test on the same"
        " examples. text: unused (split in order).",
        min=0,
        max=2**32 - 1,
    )
    num_workers: int = field(0, doc="DataLoader worker processes.", min=0, max=256)
    pin_memory: bool = field(
        True, doc="Pin batches in page-locked memory (only when training on CUDA)."
    )
    persistent_workers: bool = field(
        True, doc="Keep worker processes alive between epochs (only when num_workers > 0)."
    )


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = field("adamw", doc="Optimizer.", choices=OPTIMIZERS)
    lr: float = field(1e-3, doc="Learning rate.", min=0.0, max=10.0, exclusive_min=True)
    weight_decay: float = field(0.0, doc="L2 / decoupled weight decay.", min=0.0, max=1.0)
    decay_norm_and_bias: bool = field(
        True,
        doc="Apply weight_decay to biases and norm weights too; false puts every parameter"
        " with fewer than 2 dimensions in a second group without decay.",
    )
    momentum: float = field(0.9, doc="sgd/rmsprop: momentum.", min=0.0, max=1.0)
    nesterov: bool = field(False, doc="sgd: Nesterov momentum (needs momentum above 0).")
    betas: tuple[float, ...] = field(
        (0.9, 0.999),
        doc="adam/adamw: (beta1, beta2).",
        min=0.0,
        max=1.0,
        exclusive_max=True,
        min_items=2,
        max_items=2,
    )
    alpha: float = field(
        0.99, doc="rmsprop: smoothing constant of the squared-gradient average.", min=0.0, max=1.0
    )


@dataclass(frozen=True)
class SchedulerSpec:
    name: str = field(
        "none",
        doc="Learning-rate schedule. Per epoch (after validation): step, multistep, exponential,"
        " cosine, plateau; per optimizer step: onecycle, warmup_cosine.",
        choices=SCHEDULERS,
    )
    step_size: int = field(10, doc="step: epochs between decays.", min=1, max=1_000_000)
    milestones: tuple[int, ...] = field(
        (30, 60),
        doc="multistep: epochs at which the learning rate is multiplied by gamma (increasing).",
        min=1,
        max=1_000_000,
        min_items=1,
        max_items=100,
    )
    gamma: float = field(
        0.1,
        doc="step/multistep/exponential: decay factor; plateau: factor applied on a plateau.",
        min=0.0,
        max=1.0,
        exclusive_min=True,
    )
    eta_min: float = field(
        0.0,
        doc="cosine/warmup_cosine: final learning rate (below optimizer.lr).",
        min=0.0,
        max=10.0,
    )
    max_lr: float | None = field(
        None,
        doc="onecycle: peak learning rate (default: 10 x optimizer.lr).",
        min=0.0,
        max=10.0,
        exclusive_min=True,
    )
    pct_start: float = field(
        0.3,
        doc="onecycle: fraction of steps spent warming up.",
        min=0.0,
        max=1.0,
        exclusive_min=True,
        exclusive_max=True,
    )
    warmup_steps: int = field(
        100,
        doc="warmup_cosine: optimizer steps of linear warm-up before the cosine decay.",
        min=1,
        max=10_000_000,
    )
    monitor: str = field(
        "val_loss",
        doc="plateau: logged validation value to watch (val_loss or val_<metric>).",
        min_length=1,
        max_length=100,
    )
    mode: str = field("min", doc="plateau: whether lower or higher is better.", choices=MODES)
    patience: int = field(
        2, doc="plateau: epochs without improvement before the decay.", min=0, max=1_000_000
    )


@dataclass(frozen=True)
class EarlyStoppingSpec:
    enabled: bool = field(True, doc="Stop when the monitored metric stops improving.")
    monitor: str = field(
        "val_loss",
        doc="Logged metric to watch (val_loss or val_<metric>).",
        min_length=1,
        max_length=100,
    )
    mode: str = field("min", doc="Whether lower or higher is better.", choices=MODES)
    patience: int = field(
        5, doc="Epochs without improvement before stopping.", min=1, max=1_000_000
    )
    min_delta: float = field(
        0.0, doc="Smallest change that counts as improvement.", min=0.0, max=1e6
    )


@dataclass(frozen=True)
class CheckpointSpec:
    enabled: bool = field(True, doc="Save checkpoints (best and last) in each run's checkpoints/.")
    monitor: str = field(
        "val_loss",
        doc="Logged metric that decides the best checkpoint.",
        min_length=1,
        max_length=100,
    )
    mode: str = field("min", doc="Whether lower or higher is better.", choices=MODES)
    save_last: bool = field(True, doc="Also keep last.ckpt, used by --resume last.")


@dataclass(frozen=True)
class TrainerSpec:
    max_epochs: int = field(
        100,
        doc="Most epochs to train. Early stopping (on by default) usually ends the run"
        " sooner, and test uses the best checkpoint: this is a cap, not a budget.",
        min=1,
        max=1_000_000,
    )
    precision: str = field(
        "32",
        doc="Numeric precision; mixed modes use autocast (fp16 adds a GradScaler). With"
        " accelerator auto and no GPU, 16-mixed trains in bf16, as Lightning does.",
        choices=PRECISIONS,
    )
    accelerator: str = field(
        "auto", doc="Device type; auto picks cuda, then mps, then cpu.", choices=ACCELERATORS
    )
    devices: int = field(
        1,
        doc="Devices (processes) per node; plain style: above 1, launch with torchrun"
        " --nproc_per_node=N.",
        min=1,
        max=1024,
    )
    num_nodes: int = field(
        1,
        doc="Machines taking part; plain style: torchrun --nnodes (see scripts/slurm.sbatch).",
        min=1,
        max=1024,
    )
    strategy: str = field(
        "auto",
        doc="Distributed strategy (Lightning's names); auto: DDP when more than one process;"
        " fsdp: shard parameters, gradients and optimizer state over the processes (models"
        " larger than one device; Lightning style: GPUs only, plain style: CPU too).",
        choices=STRATEGIES,
    )
    gradient_clip_val: float | None = field(
        None,
        doc="Clip gradients to this value (none: no clipping).",
        min=0.0,
        max=1e6,
        exclusive_min=True,
    )
    gradient_clip_algorithm: str = field(
        "norm", doc="Clip by total norm or by value.", choices=CLIP_ALGORITHMS
    )
    accumulate_grad_batches: int = field(
        1,
        doc="Batches whose gradients are summed before each optimizer step.",
        min=1,
        max=10000,
    )
    log_every_n_steps: int = field(
        10, doc="How often training metrics are logged.", min=1, max=1_000_000
    )
    seed: int = field(
        42,
        doc="Random seed for model init, data order and dropout (the split: data.split_seed).",
        min=0,
        max=2**32 - 1,
    )
    deterministic: bool = field(
        False, doc="Use deterministic algorithms (slower, bit-reproducible)."
    )
    compile: bool = field(
        False, doc="Apply torch.compile to the model (faster steps after a slow first one)."
    )
    activation_checkpointing: bool = field(
        False,
        doc="fsdp: recompute each block's activations in the backward pass instead of keeping"
        " them (less memory, about a third more compute).",
    )
    early_stopping: EarlyStoppingSpec = field(factory=EarlyStoppingSpec, doc="Early stopping.")
    checkpoint: CheckpointSpec = field(factory=CheckpointSpec, doc="Checkpointing.")


@dataclass(frozen=True)
class LoggingSpec:
    csv: bool = field(True, doc="Write metrics to each run's logs/metrics.csv.")
    tensorboard: bool = field(
        True, doc="Write TensorBoard event files when tensorboard is installed."
    )
    wandb: bool = field(
        False,
        doc="Log to Weights & Biases, offline unless WANDB_MODE says otherwise"
        " (needs the project's `wandb` extra).",
    )
    mlflow: bool = field(False, doc="Log to MLflow (needs the project's `mlflow` extra).")
    mlflow_tracking_uri: str = field(
        "file:./mlruns",
        doc="mlflow: tracking URI; the default is a local file store beside the project.",
        min_length=1,
        max_length=4096,
    )


@dataclass(frozen=True)
class Spec:
    name: str = field(
        "tabular-classifier",
        doc="Project name; the folder and package names derive from it.",
        min_length=1,
        max_length=100,
        required=True,
    )
    description: str = field(
        "An MLP classifier trained on synthetic data.",
        doc="Short description for the README and pyproject.",
        max_length=2000,
        multiline=True,
    )
    task: str = field(
        "classification",
        doc="What the model predicts (classification is multiclass).",
        choices=TASKS,
    )
    model: ModelSpec = field(factory=ModelSpec, doc="The network.")
    data: DataSpec = field(factory=DataSpec, doc="The data pipeline.")
    optimizer: OptimizerSpec = field(factory=OptimizerSpec, doc="The optimizer.")
    scheduler: SchedulerSpec = field(factory=SchedulerSpec, doc="The learning-rate scheduler.")
    loss: str = field(
        "auto",
        doc="Loss function; auto picks one for the task (see below).",
        choices=LOSSES,
    )
    metrics: tuple[str, ...] | None = field(
        None,
        doc="Metrics logged for val/test, computed with torchmetrics (default and allowed"
        " values per task: see below).",
        choices=METRICS,
        min_items=1,
        max_items=len(METRICS),
    )
    trainer: TrainerSpec = field(factory=TrainerSpec, doc="Training loop settings.")
    logging: LoggingSpec = field(factory=LoggingSpec, doc="Where metrics are written.")
