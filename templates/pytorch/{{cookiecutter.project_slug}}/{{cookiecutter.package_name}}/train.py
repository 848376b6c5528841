{% set p = cookiecutter | project %}
{# the package by name where the lines stay within 100 columns #}
{% set pkg = p.package_name if p.package_name|length <= 30 else "<package>" %}
"""Train, validate and test the model, in a run folder of its own (run_folder.py).

    python -m {{ pkg }} fit [--name NAME] [--config FILE] [--resume last] ...
    python -m {{ pkg }}.train ...  # the same as fit
    torchrun --nproc_per_node=N -m {{ pkg }}.train ...  # {{ "FSDP or DDP" if p.fsdp else "DDP" }}

The loop is engine.py's; {{ "FSDP and DDP" if p.fsdp else "DDP" }} set-up is distributed.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from . import cli
{% if p.fsdp %}
from .checkpoint import {{ "load_sharded_checkpoint, restore" if p.checkpointing else "load_sharded_checkpoint" }}
{% else %}
from .checkpoint import check_weights, load_checkpoint{{ ", restore" if p.checkpointing }}{{ ", trained_columns" if p.data_source == "csv" }}
{% endif %}
from .config import Config, ConfigError
from .data import Splits, load_splits, make_loader
from .distributed import (
    World,
    barrier,
    broadcast_from_main,
    init_process_group,
    local_device,
{% if p.fsdp %}
    shard_model,
{% endif %}
    shutdown,
    world_from_env,
    wrap_ddp,
)
from .engine import TrainingLoop
from .logging_utils import MetricLogger{{ ", build_trackers" if p.extra_loggers }}, format_metrics
from .metrics import METRICS, TrainingDiverged, build_loss, build_metrics
from .model import build_model
from .optim import build_optimizer, build_scheduler{{ ", check_resumable" if p.checkpointing }}, optimizer_steps_per_epoch
{% if p.feature_scaler or p.class_weights %}
from .preprocess import {{ ["class_weights" if p.class_weights, "fit_preprocessing" if p.feature_scaler]|select|join(", ") }}
{% endif %}
from .run_folder import Interrupted, Run, StopSignals, resolve_run, trim_metrics
from .runtime import configure_determinism, configure_speed, seed_everything, select_device
{% if p.data_source != "synthetic" %}
from .sources import save_labels
{% endif %}


def run(
    config: Config,
    resume: str | None = None,
    fast_dev_run: bool = False,
    name: str | None = None,
    argv: list[str] | None = None,
) -> dict[str, float]:
    """Fit, then test, in a new run folder (or the resumed run's); returns the last
    validation and the test metrics. Under torchrun every process runs this."""
    world = world_from_env()
    if config.trainer.devices > 1 and not world.distributed:
        raise ConfigError(
            f"trainer.devices: {config.trainer.devices} devices need one process each; launch with"
            f" torchrun --nproc_per_node={config.trainer.devices} -m {__package__}.train ..."
        )
{% if not p.checkpointing %}
    if resume is not None:
        raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
    # Before the process group forms: no rank has created the folder yet.
    folder = resolve_run(config.output_dir, name, resume, main_process=world.is_main)
    seed_everything(config.trainer.seed)  # before the model's initialisation draws from it
    configure_determinism(config.trainer.deterministic)
    device = local_device(world, select_device(config.trainer.accelerator))
    configure_speed(device, config.trainer.deterministic)
    init_process_group(world, device)
    metrics = fit_and_test(config, world, device, folder, fast_dev_run, argv or sys.argv)
    shutdown(world)
    return metrics


def fit_and_test(
    config: Config,
    world: World,
    device: torch.device,
    folder: Run,
    fast_dev_run: bool,
    argv: list[str],
) -> dict[str, float]:
    splits = load_splits(config)
    # --fast-dev-run checks the wiring only: one batch per stage, nothing written.
    loop = build_loop(config, world, device, splits, limit_batches=1 if fast_dev_run else None)
{% if p.checkpointing %}
    if folder.checkpoint is not None:
{% if p.fsdp %}
        state = load_sharded_checkpoint(folder.checkpoint, loop.module, loop.optimizer)
{% else %}
        state = load_checkpoint(folder.checkpoint)
{% endif %}
        check_resumable(state["config"], config)
        restore(loop, state, folder.checkpoint)  # every rank loads the same file
        if world.is_main:
            where = f"epoch {loop.epoch}, step {loop.global_step}"
            print(f"resumed from {folder.checkpoint} at {where}")
{% endif %}
    if not fast_dev_run and world.is_main:  # everything is built and checked: now the folder
        folder.start(config, argv, style="pytorch")
    status = "failed"
    loop.signals = StopSignals().install()  # SIGTERM and SIGINT end the run at a step boundary
    try:
        if not fast_dev_run:
            folder.path = Path(broadcast_from_main(str(folder.path), world))
{% if p.data_source != "synthetic" %}
            if splits.labels is not None and world.is_main:
                save_labels(splits.labels, folder.path)
{% endif %}
            attach_outputs(loop, config, world, folder)
        metrics = loop.fit()
        barrier(world)  # rank 0 has finished writing best.ckpt
        if splits.test is not None:
{% if p.best_checkpoint %}
            best = folder.checkpoints / "best.ckpt"
            if not fast_dev_run and best.exists():  # the best weights are tested
{% if p.fsdp %}
                load_sharded_checkpoint(best, loop.module)
{% else %}
                load_weights(loop.module, best)
{% endif %}
{% endif %}
            options = loader_options(device, world)
            loader = make_loader(splits.test, config, shuffle=False, **options)
            test_metrics = loop.evaluate(loader, "test")
            loop.logger.log(test_metrics, epoch=loop.epoch, step=loop.global_step)
            if world.is_main:
                print(f"test: {format_metrics(test_metrics)}")
            metrics.update(test_metrics)
        loop.stop_if_signalled(every_rank=True)
        status = "finished"
    except TrainingDiverged:
        status = "diverged"
        raise
    except (Interrupted, KeyboardInterrupt) as stop:
        status = "interrupted"
        if isinstance(stop, Interrupted) and (folder.checkpoints / "last.ckpt").exists():
            stop.run_dir = folder.path  # the stop line says how to continue
        raise
    finally:
        loop.signals.restore()
        try:
            loop.logger.close()  # raises again when its last rows meet a full disk
        finally:
            if world.is_main:
                folder.finish(status{{ ", best=loop.best" if p.best_checkpoint }})
    return metrics


def loader_options(device: torch.device, world: World) -> dict[str, Any]:
    """Pinned memory for GPUs; each rank loads its own part of a split."""
    return {"pin_memory": device.type == "cuda", "num_replicas": world.size, "rank": world.rank}


def build_loop(
    config: Config,
    world: World,
    device: torch.device,
    splits: Splits,
    limit_batches: int | None = None,
) -> TrainingLoop:
    """The model, its optimizer and the data loaders in a loop that writes nothing yet
    (attach_outputs gives it the run folder's logs and checkpoints)."""
    model = build_model(config.model, splits.input_shape, splits.num_outputs{{ ", splits.vocab_size" if p.input_kind == "tokens" }})
    model = model.to(device)
{% if p.feature_scaler %}
    fit_preprocessing(model, splits.train, config.data)  # statistics of the training split
{% endif %}
{% if p.model_type == "cnn" %}
    if device.type == "cuda":  # convolutions run faster in NHWC on GPUs
        model = model.to(memory_format=torch.channels_last)
{% endif %}
{% if p.fsdp %}
    sharded = config.trainer.strategy == "fsdp"
    if sharded:  # in place, before the optimizer sees the parameters
        shard_model(model, world, config.trainer.precision, config.trainer.activation_checkpointing)
{% endif %}
    if config.trainer.compile:
        model.compile()  # in place: state_dict keys stay the same
    options = loader_options(device, world)
    train_loader = make_loader(splits.train, config, shuffle=True, **options)
    val_loader = None
    if splits.val is not None:
        val_loader = make_loader(splits.val, config, shuffle=False, **options)
    optimizer = build_optimizer(model, config)
    steps = optimizer_steps_per_epoch(len(train_loader), config.trainer.accumulate_grad_batches)
    loop = TrainingLoop(
{% if p.fsdp %}
        model if sharded else wrap_ddp(model, world, device, config.trainer.strategy),
{% else %}
        wrap_ddp(model, world, device, config.trainer.strategy),
{% endif %}
{% if p.class_weights %}
        build_loss(config, class_weights(config.data, splits.train, splits.num_outputs)).to(device),
{% else %}
        build_loss(config).to(device),
{% endif %}
        optimizer,
        build_scheduler(optimizer, config, steps * config.trainer.max_epochs),
        config,
        device,
        train_loader,
        val_loader,
        limit_batches=limit_batches,
        world=world,
        metrics=build_metrics(splits.num_outputs).to(device),
    )
    loop.data_schema = splits.schema().to_dict()  # kept in every checkpoint, for predict
    return loop


def attach_outputs(loop: TrainingLoop, config: Config, world: World, folder: Run) -> None:
    """The run folder's logs (rank 0 writes them) and checkpoints{{ " (each rank its shards)" if p.fsdp else " (rank 0)" }}.
    A resumed run appends to its metrics.csv from the checkpoint on: one curve."""
    log_dir = None
    if world.is_main and (config.logging.csv or config.logging.tensorboard):
        log_dir = folder.logs
        if folder.resumed:  # rows after the checkpoint are logged again: drop them
            trim_metrics(log_dir / "metrics.csv", epochs_done=loop.epoch)
    columns = ["train_loss_step", "lr", "train_loss_epoch"]
    if loop.scheduler is None:  # no learning rate is logged
        columns.remove("lr")
    columns += [f"{stage}_{name}" for stage in ("val", "test") for name in ("loss", *METRICS)]
    loop.logger = MetricLogger(
        log_dir,
        columns,
        config.logging.csv,
        config.logging.tensorboard,
{% if p.extra_loggers %}
        build_trackers(config) if world.is_main else [],
{% endif %}
        resumed_step=loop.global_step if folder.resumed else None,
    )
{% if p.checkpointing %}
    loop.checkpoint_dir = folder.checkpoints{{ "" if p.fsdp else " if world.is_main else None" }}
{% endif %}
{% if not p.fsdp %}


def load_weights(model: torch.nn.Module, checkpoint: str | Path) -> None:
    """The checkpoint's weights, checked against the model's first."""
    state = load_checkpoint(checkpoint)
    check_weights(state["model"], model.state_dict(), checkpoint)
    model.load_state_dict(state["model"])
{% endif %}


def evaluate_checkpoint(config: Config, checkpoint: str) -> dict[str, float]:
    """The test split's metrics for a checkpoint's weights: the `test` command."""
    seed_everything(config.trainer.seed)
    device = select_device(config.trainer.accelerator)
{% if p.data_source == "csv" and not p.fsdp %}
    # the training file's columns by name, in the order the checkpoint's model reads them
    splits = load_splits(config, trained_columns(checkpoint))
{% else %}
    splits = load_splits(config)
{% endif %}
    if splits.test is None:
        raise ConfigError(
            "is 0 in the run's config, so there is no test split",
            "data.test_split",
            "train a run with data.test_split above 0",
        )
{% if p.fsdp %}
    config.trainer.strategy = "auto"  # one process: the shards load into the whole model
{% endif %}
    loop = build_loop(config, World(), device, splits)
{% if p.fsdp %}
    load_sharded_checkpoint(checkpoint, loop.module)
{% else %}
    load_weights(loop.module, checkpoint)
{% endif %}
    loader = make_loader(splits.test, config, shuffle=False, **loader_options(device, World()))
    return loop.evaluate(loader, "test")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """The `fit` command, for `python -m {{ pkg }}.train ARGS`."""
    return cli.main(["fit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
