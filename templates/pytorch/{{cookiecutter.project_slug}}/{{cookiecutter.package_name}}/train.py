{% set p = cookiecutter | project %}
{# the package by name where the lines stay within 100 columns #}
{% set pkg = p.package_name if p.package_name|length <= 30 else "<package>" %}
"""Train, validate and test the model, in a run folder of its own (run_folder.py).

    python -m {{ pkg }} fit [--name NAME] [--config FILE] [--resume last] ...
    python -m {{ pkg }}.train ...  # the same as fit
    torchrun --nproc_per_node=N -m {{ pkg }}.train ...  # DDP

Plain PyTorch: the loop lives in engine.py, DDP set-up in distributed.py. Run `--help`
for every option.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
from .logging_utils import MetricLogger{{ ", build_trackers" if p.extra_loggers }}
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
    """Fit, then test, in a new run folder (or the resumed run's); returns the final
    metrics (last validation and test).

    Under torchrun every process runs this; they join one process group first and
    leave it together at the end.
    """
    world = world_from_env()
    devices = config.trainer.devices
    if devices > 1 and not world.distributed:
        raise ConfigError(
            f"trainer.devices: {devices} devices need one process each; launch with"
            f" torchrun --nproc_per_node={devices} -m {__package__}.train ..."
        )
{% if not p.checkpointing %}
    if resume is not None:
        raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
    # Before the process group forms: no rank has created the folder yet.
    folder = resolve_run(config.output_dir, name, resume, main_process=world.is_main)
    # Seed before anything random: model initialisation draws from the global RNG.
    seed_everything(config.trainer.seed)
    configure_determinism(config.trainer.deterministic)
    device = local_device(world, select_device(config.trainer.accelerator))
    configure_speed(device, config.trainer.deterministic)
    init_process_group(world, device)
    metrics = fit_and_test(config, world, device, folder, fast_dev_run, argv or sys.argv)
    shutdown(world)  # after every rank is done (rank 0 may still be writing)
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
            print(f"resumed from {folder.checkpoint} at epoch {loop.epoch}, step {loop.global_step}")
{% endif %}
    # Everything is built and checked: only now does the run folder appear.
    if not fast_dev_run and world.is_main:
        folder.start(config, argv, style="pytorch")
    status = "failed"
    # SIGTERM and SIGINT end the run at a step boundary, with its last checkpoint kept
    signals = StopSignals().install()
    loop.signals = signals
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
            best_path = folder.checkpoints / "best.ckpt"
            if not fast_dev_run and best_path.exists():
                # Test the best weights, as Lightning's trainer.test(ckpt_path="best") does.
{% if p.fsdp %}
                load_sharded_checkpoint(best_path, loop.module)
{% else %}
                best = load_checkpoint(best_path)
                check_weights(best["model"], loop.module.state_dict(), best_path)
                loop.module.load_state_dict(best["model"])
{% endif %}
{% endif %}
            pin_memory = device.type == "cuda"
            test_loader = make_loader(
                splits.test,
                config,
                shuffle=False,
                pin_memory=pin_memory,
                num_replicas=world.size,
                rank=world.rank,
            )
            test_metrics = loop.evaluate(test_loader, "test")
            loop.logger.log(test_metrics, epoch=loop.epoch, step=loop.global_step)
            if world.is_main:
                print("test: " + " ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()))
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
        signals.restore()
        try:
            loop.logger.close()  # raises again when its last rows meet a full disk
        finally:
            if world.is_main:
{% if p.best_checkpoint %}
                folder.finish(status, best=loop.best.best)
{% else %}
                folder.finish(status)
{% endif %}
    return metrics


def build_loop(
    config: Config,
    world: World,
    device: torch.device,
    splits: Splits,
    limit_batches: int | None = None,
) -> TrainingLoop:
    """The model, its optimizer and the data loaders in a loop that writes nothing yet
    (attach_outputs gives it a logger and a checkpoint folder)."""
    model = build_model(
        config.model, splits.input_shape, splits.num_outputs{{ ", splits.vocab_size" if p.input_kind == "tokens" }}
    ).to(device)
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
    pin_memory = device.type == "cuda"
    shard = {"num_replicas": world.size, "rank": world.rank}  # each rank loads its own part
    train_loader = make_loader(splits.train, config, shuffle=True, pin_memory=pin_memory, **shard)
    val_loader = None
    if splits.val is not None:
        val_loader = make_loader(
            splits.val, config, shuffle=False, pin_memory=pin_memory, **shard
        )
    optimizer = build_optimizer(model, config)
    steps_per_epoch = optimizer_steps_per_epoch(
        len(train_loader), config.trainer.accumulate_grad_batches
    )
    scheduler = build_scheduler(optimizer, config, steps_per_epoch * config.trainer.max_epochs)
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
        scheduler,
        config,
        device,
        train_loader,
        val_loader,
        MetricLogger(None, [], csv_log=False, tensorboard=False),
        None,  # no checkpoints
        limit_batches,
        world,
        metrics=build_metrics(splits.num_outputs).to(device),
    )
    loop.data_schema = splits.schema().to_dict()  # kept in every checkpoint, for predict
    return loop


def attach_outputs(loop: TrainingLoop, config: Config, world: World, folder: Run) -> None:
    """The run folder's logs (rank 0 writes them) and checkpoints{{ " (each rank its shards)" if p.fsdp else " (rank 0)" }}.
    A resumed run appends to its metrics.csv from the checkpoint on, so there is one curve."""
    log_dir = None
    if world.is_main and (config.logging.csv or config.logging.tensorboard):
        log_dir = folder.logs
        if folder.resumed:  # rows after the checkpoint are logged again: drop them
            trim_metrics(log_dir / "metrics.csv", epochs_done=loop.epoch)
    columns = ["train_loss_step", *(["lr"] if loop.scheduler is not None else []), "train_loss_epoch"]
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
{% if p.fsdp %}
    loop.checkpoint_dir = folder.checkpoints
{% else %}
    loop.checkpoint_dir = folder.checkpoints if world.is_main else None
{% endif %}
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
    state = load_checkpoint(checkpoint)
    check_weights(state["model"], loop.module.state_dict(), checkpoint)
    loop.module.load_state_dict(state["model"])
{% endif %}
    test_loader = make_loader(
        splits.test, config, shuffle=False, pin_memory=device.type == "cuda"
    )
    return loop.evaluate(test_loader, "test")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """The `fit` command, for `python -m {{ pkg }}.train ARGS`."""
    return cli.main(["fit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
