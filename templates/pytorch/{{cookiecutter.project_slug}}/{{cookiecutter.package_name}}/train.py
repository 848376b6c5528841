{% set p = cookiecutter | project %}
"""Train, validate and test the model.

    python -m {{ p.package_name }}.train
        [--config FILE] [--max-epochs N] [--resume last] ...
    torchrun --nproc_per_node=N -m {{ p.package_name }}.train ...  # DDP

Plain PyTorch: the loop lives in engine.py, DDP set-up in distributed.py. Run `--help`
for every option.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import torch

{% if p.fsdp %}
from .checkpoint import CheckpointError{{ ", load_sharded_checkpoint, restore" if p.checkpointing }}
{% else %}
from .checkpoint import CheckpointError{{ ", check_weights, load_checkpoint, restore" if p.checkpointing }}
{% endif %}
from .config import Config, ConfigError, config_to_yaml, load_config, parse_args{{ ", resolve_resume_path" if p.checkpointing }}
from .data import DataError, load_splits, make_loader
from .distributed import (
    World,
    barrier,
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
from .logging_utils import MetricLogger, {{ "build_trackers, " if p.extra_loggers }}next_version_dir
from .metrics import EXIT_DIVERGED, METRICS, TrainingDiverged, build_loss, build_metrics
from .model import build_model
{% if p.feature_scaler or p.class_weights %}
from .preprocess import {{ ["class_weights" if p.class_weights, "fit_preprocessing" if p.feature_scaler]|select|join(", ") }}
{% endif %}
from .optim import {{ "check_resumable, " if p.checkpointing }}build_optimizer, build_scheduler, optimizer_steps_per_epoch
from .runtime import configure_determinism, configure_speed, seed_everything, select_device
{% if p.data_source != "synthetic" %}
from .sources import save_labels
{% endif %}


def run(config: Config, resume: str | None = None, fast_dev_run: bool = False) -> dict[str, float]:
    """Fit, then test; returns the final metrics (last validation and test).

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
    # Seed before anything random: model initialisation draws from the global RNG.
    seed_everything(config.trainer.seed)
    configure_determinism(config.trainer.deterministic)
    device = local_device(world, select_device(config.trainer.accelerator))
    configure_speed(device, config.trainer.deterministic)
    init_process_group(world, device)
    metrics = fit_and_test(config, world, device, resume, fast_dev_run)
    shutdown(world)  # after every rank is done (rank 0 may still be writing)
    return metrics


def fit_and_test(
    config: Config, world: World, device: torch.device, resume: str | None, fast_dev_run: bool
) -> dict[str, float]:
    splits = load_splits(config)
{% if p.data_source != "synthetic" %}
    if splits.labels is not None and world.is_main and not fast_dev_run:
        save_labels(splits.labels, config.output_dir)
{% endif %}
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
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)

    output_dir = Path(config.output_dir)
    # --fast-dev-run checks the wiring only: one batch per stage, nothing written.
    limit_batches = 1 if fast_dev_run else None
    log_dir = None  # rank 0 alone writes logs{{ "" if p.fsdp else " and checkpoints" }}
    if world.is_main and not fast_dev_run and (config.logging.csv or config.logging.tensorboard):
        log_dir = next_version_dir(output_dir / "logs")
    columns = ["train_loss_step", *(["lr"] if scheduler is not None else []), "train_loss_epoch"]
    columns += [f"{stage}_{name}" for stage in ("val", "test") for name in ("loss", *METRICS)]
{% if p.extra_loggers %}
    trackers = build_trackers(config) if world.is_main and not fast_dev_run else []
    logger = MetricLogger(
        log_dir, columns, config.logging.csv, config.logging.tensorboard, trackers
    )
{% else %}
    logger = MetricLogger(log_dir, columns, config.logging.csv, config.logging.tensorboard)
{% endif %}
    try:  # the logger closes its files however the run ends
{% if p.checkpointing %}
        checkpoint_dir = None if fast_dev_run else output_dir / "checkpoints"
{% else %}
        checkpoint_dir = None  # checkpointing is off in the spec
{% endif %}
        loop = TrainingLoop(
{% if p.fsdp %}
            model if sharded else wrap_ddp(model, world, device, config.trainer.strategy),
{% else %}
            wrap_ddp(model, world, device, config.trainer.strategy),
{% endif %}
{% if p.class_weights %}
            build_loss(
                config, class_weights(config.data, splits.train, splits.num_outputs)
            ).to(device),
{% else %}
            build_loss(config).to(device),
{% endif %}
            optimizer,
            scheduler,
            config,
            device,
            train_loader,
            val_loader,
            logger,
{% if p.fsdp %}
            checkpoint_dir,  # checkpoints are sharded: every rank writes its part
{% else %}
            checkpoint_dir if world.is_main else None,
{% endif %}
            limit_batches,
            world,
            metrics=build_metrics(splits.num_outputs).to(device),
        )
{% if p.checkpointing %}
        resume_path = resolve_resume_path(resume, config.output_dir)
        if resume_path is not None:
{% if p.fsdp %}
            state = load_sharded_checkpoint(resume_path, model, optimizer)
{% else %}
            state = load_checkpoint(resume_path)
{% endif %}
            check_resumable(state["config"], config)
            restore(loop, state, resume_path)  # every rank loads the same file
            if world.is_main:
                print(f"resumed from {resume_path} at epoch {loop.epoch}, step {loop.global_step}")
{% else %}
        if resume is not None:
            raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
        metrics = loop.fit()
        barrier(world)  # rank 0 has finished writing best.ckpt
        if splits.test is not None:
{% if p.best_checkpoint %}
            best_path = output_dir / "checkpoints" / "best.ckpt"
            if checkpoint_dir is not None and best_path.exists():
                # Test the best weights, as Lightning's trainer.test(ckpt_path="best") does.
{% if p.fsdp %}
                load_sharded_checkpoint(best_path, model)
{% else %}
                best = load_checkpoint(best_path)
                check_weights(best["model"], model.state_dict(), best_path)
                model.load_state_dict(best["model"])
{% endif %}
{% endif %}
            test_loader = make_loader(
                splits.test, config, shuffle=False, pin_memory=pin_memory, **shard
            )
            test_metrics = loop.evaluate(test_loader, "test")
            logger.log(test_metrics, epoch=loop.epoch, step=loop.global_step)
            if world.is_main:
                print("test: " + " ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()))
            metrics.update(test_metrics)
    finally:
        logger.close()
    return metrics


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    try:
        config = load_config(args)
        if args.print_config:
            print(config_to_yaml(config), end="")
            return {}
        return run(config, resume=args.resume, fast_dev_run=args.fast_dev_run)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        if getattr(err, "hint", ""):
            print(f"hint: {err.hint}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as err:  # a full disk while writing logs (checkpoints: CheckpointError)
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        print(f"error: {err.filename or 'an output file'}: cannot write: {err.strerror}", file=sys.stderr)
        print("hint: free some disk space (or use --output-dir on another disk)", file=sys.stderr)
        raise SystemExit(2) from None
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        print(f"hint: {err.hint}", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED) from None


if __name__ == "__main__":
    main()
