{% set p = cookiecutter._project %}
"""Train, validate and test the model.

    python -m {{ p.package_name }}.train
        [--config FILE] [--max-epochs N] [--resume last] ...

Plain PyTorch: the loop lives in engine.py. Run `--help` for every option.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .checkpoint import CheckpointError{{ ", load_checkpoint, restore" if p.checkpointing }}
from .config import Config, ConfigError, load_config, parse_args{{ ", resolve_resume_path" if p.checkpointing }}
from .data import DataError, load_splits, make_loader
from .engine import TrainingLoop
from .logging_utils import MetricLogger, next_version_dir
from .metrics import METRICS, build_loss
from .model import build_model
from .optim import build_optimizer{{ ", build_scheduler, optimizer_steps_per_epoch" if p.scheduler_interval }}{{ ", check_resumable" if p.scheduler == "onecycle" and p.checkpointing }}
from .runtime import configure_determinism, seed_everything, select_device


def run(config: Config, resume: str | None = None, fast_dev_run: bool = False) -> dict[str, float]:
    """Fit, then test; returns the final metrics (last validation and test)."""
    if config.trainer.devices != 1:
        raise ConfigError(
            "trainer.devices: the plain loop uses one device per process (devices: 1)"
        )
    # Seed before anything random: model initialisation draws from the global RNG.
    seed_everything(config.trainer.seed)
    configure_determinism(config.trainer.deterministic)
    device = select_device(config.trainer.accelerator)
    splits = load_splits(config)
    model = build_model(config.model, splits.input_shape, splits.num_outputs).to(device)
    pin_memory = device.type == "cuda"
    train_loader = make_loader(splits.train, config, shuffle=True, pin_memory=pin_memory)
    val_loader = None
    if splits.val is not None:
        val_loader = make_loader(splits.val, config, shuffle=False, pin_memory=pin_memory)
    optimizer = build_optimizer(model, config)
{% if p.scheduler_interval %}
    steps_per_epoch = optimizer_steps_per_epoch(
        len(train_loader), config.trainer.accumulate_grad_batches
    )
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
{% endif %}

    output_dir = Path(config.output_dir)
    # --fast-dev-run checks the wiring only: one batch per stage, nothing written.
    limit_batches = 1 if fast_dev_run else None
    log_dir = None
    if not fast_dev_run and (config.logging.csv or config.logging.tensorboard):
        log_dir = next_version_dir(output_dir / "logs")
    columns = ["train_loss_step", "lr", "train_loss_epoch"]
    columns += [f"{stage}_{name}" for stage in ("val", "test") for name in ("loss", *METRICS)]
    logger = MetricLogger(log_dir, columns, config.logging.csv, config.logging.tensorboard)
{% if p.checkpointing %}
    checkpoint_dir = None if fast_dev_run else output_dir / "checkpoints"
{% else %}
    checkpoint_dir = None  # checkpointing is off in the spec
{% endif %}
    loop = TrainingLoop(
        model,
        build_loss().to(device),
        optimizer,
{% if p.scheduler_interval %}
        scheduler,
{% endif %}
        config,
        device,
        train_loader,
        val_loader,
        logger,
        checkpoint_dir,
        limit_batches,
    )
{% if p.checkpointing %}
    resume_path = resolve_resume_path(resume, config.output_dir)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
{% if p.scheduler == "onecycle" %}
        check_resumable(state["config"], config)
{% endif %}
        restore(loop, state, resume_path)
        print(f"resumed from {resume_path} at epoch {loop.epoch}, step {loop.global_step}")
{% else %}
    if resume is not None:
        raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
    try:
        metrics = loop.fit()
        if splits.test is not None:
{% if p.best_checkpoint %}
            best_path = output_dir / "checkpoints" / "best.ckpt"
            if checkpoint_dir is not None and best_path.exists():
                # Test the best weights, as Lightning's trainer.test(ckpt_path="best") does.
                model.load_state_dict(load_checkpoint(best_path)["model"])
{% endif %}
            test_loader = make_loader(splits.test, config, shuffle=False, pin_memory=pin_memory)
            test_metrics = loop.evaluate(test_loader, "test")
            logger.log(test_metrics, epoch=loop.epoch, step=loop.global_step)
            print("test: " + " ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()))
            metrics.update(test_metrics)
    finally:
        logger.close()
    return metrics


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    try:
        config = load_config(args)
        return run(config, resume=args.resume, fast_dev_run=args.fast_dev_run)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
