"""Optimizer and learning-rate schedule, both torch's own, chosen in the config at run time:
optimizer.name is any torch.optim optimizer (its other keys are that class's arguments),
scheduler.name one of the SCHEDULES in config.py."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import (
    SCHEDULES,
    Config,
    ConfigError,
    CosineSchedule,
    ExponentialSchedule,
    MultistepSchedule,
    OnecycleSchedule,
    PlateauSchedule,
    StepSchedule,
    WarmupCosineSchedule,
)
from .config_checks import torch_optimizers

# Schedules that advance after each optimizer step; the others advance after each epoch
# (after validation), as Lightning steps them.
STEP_SCHEDULES = ("onecycle", "warmup_cosine")


def optimizer_steps_per_epoch(num_batches: int, accumulate_grad_batches: int) -> int:
    """Steps per epoch: one every N batches, plus one for a shorter final group."""
    return math.ceil(num_batches / accumulate_grad_batches)


def parameter_groups(model: nn.Module, config: Config) -> list[dict]:
    """One group, or (decay_norm_and_bias: false) a second one without weight decay for every
    parameter with fewer than 2 dimensions: biases and norm weights."""
    settings = config.optimizer
    parameters = [param for param in model.parameters() if param.requires_grad]
    if settings.decay_norm_and_bias:
        return [{"params": parameters, "weight_decay": settings.weight_decay}]
    decay = [param for param in parameters if param.ndim >= 2]
    no_decay = [param for param in parameters if param.ndim < 2]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """The torch.optim class named by optimizer.name, with its arguments from the config."""
    settings = config.optimizer
    optimizer_class = torch_optimizers()[settings.name.lower()]
    arguments = {
        key: tuple(value) if isinstance(value, list) else value  # betas=(0.9, 0.999)
        for key, value in settings.args.items()
    }
    return optimizer_class(parameter_groups(model, config), lr=settings.lr, **arguments)


def scheduler_interval(config: Config) -> str:
    """When the schedule advances: "step" after each optimizer step, "epoch" after validation."""
    return "step" if config.scheduler.name in STEP_SCHEDULES else "epoch"


def plateau_monitor(config: Config) -> str | None:
    """The validation value a plateau schedule is stepped with; None for other schedules."""
    schedule = SCHEDULES[config.scheduler.name](**config.scheduler.args)
    return schedule.monitor if isinstance(schedule, PlateauSchedule) else None


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: Config, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The schedule named by scheduler.name, or None for none; total_steps: the optimizer
    steps of the whole run (over max_epochs)."""
    schedule = SCHEDULES[config.scheduler.name](**config.scheduler.args)
    schedulers = torch.optim.lr_scheduler
    if isinstance(schedule, StepSchedule):  # decays every `step_size` epochs
        return schedulers.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)
    if isinstance(schedule, MultistepSchedule):  # decays at the listed epochs
        return schedulers.MultiStepLR(
            optimizer, milestones=schedule.milestones, gamma=schedule.gamma
        )
    if isinstance(schedule, ExponentialSchedule):  # decays after every epoch
        return schedulers.ExponentialLR(optimizer, gamma=schedule.gamma)
    if isinstance(schedule, CosineSchedule):  # anneals once over max_epochs
        return schedulers.CosineAnnealingLR(
            optimizer, T_max=config.trainer.max_epochs, eta_min=schedule.eta_min
        )
    if isinstance(schedule, PlateauSchedule):  # stepped with the monitored value
        return schedulers.ReduceLROnPlateau(
            optimizer, mode=schedule.mode, factor=schedule.gamma, patience=schedule.patience
        )
    if isinstance(schedule, WarmupCosineSchedule):
        if schedule.warmup_steps >= total_steps:
            raise ConfigError(
                f"scheduler.warmup_steps: {schedule.warmup_steps} is not shorter than training "
                f"({total_steps} optimizer steps); lower it or train longer"
            )
        warmup = schedule.warmup_steps  # a linear ramp to lr: lr * (step + 1) / warmup
        ramp = schedulers.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup - 1)
        decay = schedulers.CosineAnnealingLR(
            optimizer, T_max=total_steps - warmup, eta_min=schedule.eta_min
        )
        return schedulers.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])
    if isinstance(schedule, OnecycleSchedule):
        if schedule.pct_start * total_steps <= 1:  # torch divides by zero below this
            raise ConfigError(
                f"scheduler.pct_start: {schedule.pct_start} of {total_steps} optimizer steps "
                "leaves no warm-up step; train longer or raise pct_start"
            )
        max_lr = 10 * config.optimizer.lr if schedule.max_lr is None else schedule.max_lr
        return schedulers.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=schedule.pct_start
        )
    return None


def check_resumable(saved_config: dict, config: Config) -> None:
    """A resumed run keeps the optimizer and schedule whose state it restores; a per-step
    schedule's length is fixed when it is built, so it also keeps max_epochs."""
    for section in ("optimizer", "scheduler"):
        saved, name = saved_config[section]["name"], getattr(config, section).name
        if saved.lower() != name.lower():
            raise ConfigError(
                f"is {name}, but the checkpoint to resume was trained with {saved}",
                f"{section}.name",
                f"resume with --set {section}.name={saved}, or start a new run without --resume",
            )
    saved_epochs = saved_config["trainer"]["max_epochs"]
    if config.scheduler.name in STEP_SCHEDULES and saved_epochs != config.trainer.max_epochs:
        raise ConfigError(
            f"--max-epochs {config.trainer.max_epochs}: the {config.scheduler.name} schedule in"
            f" this checkpoint spans {saved_epochs} epochs",
            hint=f"resume with --max-epochs {saved_epochs}",
        )
