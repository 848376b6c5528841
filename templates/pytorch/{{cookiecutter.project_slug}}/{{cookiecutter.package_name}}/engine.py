{% set p = cookiecutter | project %}
"""The training loop: train and validate each epoch, log, checkpoint{{ ", stop early" if p.early_stopping }}; evaluate.

The optimizer steps every accumulate_grad_batches batches (and on an epoch's last batch),
each loss divided by that number; gradients are clipped right before the step (unscaled
first under fp16). Step schedules advance after each optimizer step, epoch schedules after
validation. Under torchrun the model arrives wrapped in {{ "DDP or FSDP" if p.fsdp else "DDP" }}: micro-steps skip the
gradient sync, logged values are averaged over ranks, and rank 0 alone prints and logs.
"""

from __future__ import annotations

import contextlib
import itertools
{% if p.early_stopping or p.best_checkpoint %}
import math
{% endif %}
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
{% if p.fsdp %}
from torch.distributed.fsdp import FSDPModule
{% endif %}
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

{% if p.checkpointing %}
from .checkpoint import {{ "save_sharded_checkpoint" if p.fsdp else "save_checkpoint" }}
{% endif %}
from .config import Config
from .distributed import World, all_reduce_sum, {{ "gradient_sync_skipper, " if p.fsdp }}without_ddp
from .logging_utils import MetricLogger, format_metrics
from .metrics import MetricSet, check_finite_loss
from .optim import plateau_monitor, scheduler_interval
from .rng import capture_rng_states, restore_rng_states
from .run_folder import Interrupted, StopSignals
from .runtime import autocast_context, grad_scaler, resolve_precision
{% if p.early_stopping or p.best_checkpoint %}


def improved(current: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """Better than `best` by more than min_delta, as Lightning's callbacks judge it."""
    return current + min_delta < best if mode == "min" else current - min_delta > best
{% endif %}


class TrainingLoop:
    def __init__(
        self,
        model: nn.Module,
        criterion: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        config: Config,
        device: torch.device,
        train_loader: DataLoader,
        val_loader: DataLoader | None,
        logger: MetricLogger | None = None,  # None: log nothing
        checkpoint_dir: Path | None = None,  # None: save nothing (e.g. --fast-dev-run)
        limit_batches: int | None = None,  # None: whole epochs
        world: World | None = None,  # None: a single process
        metrics: MetricSet | None = None,  # None: the loss only
    ) -> None:
        self.model = model  # what trains: the network{{ " (sharded in place by FSDP)" if p.fsdp }}, or DDP around it
        self.module = without_ddp(model)  # the network: evaluated and saved
        self.criterion, self.optimizer, self.scheduler = criterion, optimizer, scheduler
        self.config, self.device, self.world = config, device, world or World()
        self.train_loader, self.val_loader = train_loader, val_loader
        self.logger = logger or MetricLogger(None, [], csv_log=False, tensorboard=False)
        self.checkpoint_dir, self.limit_batches = checkpoint_dir, limit_batches
        self.metrics = metrics
        self.signals: StopSignals | None = None  # a fit's: SIGTERM and SIGINT end it
        self.bar: tqdm | None = None  # the epoch's progress bar (rank 0 shows it)
        self.data_schema: dict[str, Any] = {}  # data.Schema: what the model reads and predicts
        self.interval, self.plateau_monitor = scheduler_interval(config), plateau_monitor(config)
        precision = resolve_precision(device, config.trainer.precision)
{% if p.fsdp %}
        # Sharded, FSDP's MixedPrecisionPolicy casts the parameters instead of autocast.
        sharded = isinstance(model, FSDPModule)
        self.autocast = contextlib.nullcontext() if sharded else autocast_context(device, precision)
        # Accumulation micro-steps skip the gradient reduction; one process has none.
        self.no_sync = gradient_sync_skipper(model)
{% else %}
        self.autocast = autocast_context(device, precision)
        self.no_sync = getattr(model, "no_sync", None)  # DDP's; one process has none
{% endif %}
        self.scaler = grad_scaler(device, precision)
        self.epoch = 0  # epochs completed
        self.global_step = 0  # optimizer steps taken
{% if p.best_checkpoint %}
        # best.ckpt's monitored value
        self.best = -math.inf if config.trainer.checkpoint.mode == "max" else math.inf
{% endif %}
{% if p.early_stopping %}
        # early stopping's best monitored value, and the validations since it improved
        best = -math.inf if config.trainer.early_stopping.mode == "max" else math.inf
        self.early_stopping = {"best": best, "wait": 0}
{% endif %}

    def fit(self) -> dict[str, float]:
        """Train from self.epoch to max_epochs; returns the last epoch's metrics."""
        metrics: dict[str, float] = {}
        while self.epoch < self.config.trainer.max_epochs:
            metrics = {"train_loss_epoch": self.train_epoch()}
            # a NaN or inf loss stops the run before this epoch's checkpoints are written
            where = (self.epoch, self.global_step)
            check_finite_loss(metrics["train_loss_epoch"], "mean train loss", *where)
            if self.val_loader is not None:
                metrics.update(self.evaluate(self.val_loader, "val"))
                check_finite_loss(metrics["val_loss"], "validation loss", *where)
            if self.plateau_monitor is not None:  # stepped with the monitored value
                self.scheduler.step(metrics[self.plateau_monitor])
            elif self.scheduler is not None and self.interval == "epoch":
                self.scheduler.step()
            self.epoch += 1
            # logged at the index of the epoch's last step (steps are numbered from 0)
            self.logger.log(metrics, epoch=self.epoch - 1, step=self.global_step - 1)
            if self.world.is_main:
                print(f"epoch {self.epoch - 1}: {format_metrics(metrics)}")
{% if p.early_stopping %}
            stop = self.should_stop(metrics)
{% endif %}
{% if p.checkpointing %}
            if self.checkpoint_dir is not None:
                self.save(metrics)
{% endif %}
            self.stop_if_signalled(every_rank=True)  # this epoch's checkpoint is written
            if {{ "stop or " if p.early_stopping }}self.limit_batches is not None:
                break
        return metrics

    def stop_if_signalled(self, every_rank: bool = False) -> None:
        """End the fit after SIGTERM or SIGINT, at a step boundary. One process checks before
        every batch; several check together once an epoch (one all-reduce)."""
        if self.signals is None:
            return
        if not self.world.distributed:
            self.signals.check()
        elif every_rank:
            received = torch.tensor(float(self.signals.received or 0), device=self.device)
            if all_reduce_sum(received, self.world).item() > 0:
                raise Interrupted(self.signals.received or signal.SIGTERM)

    def train_epoch(self) -> float:
        """One epoch of training; returns its mean loss (over every rank's examples)."""
        accumulate = self.config.trainer.accumulate_grad_batches
        batches: Iterable = self.train_loader
        num_batches = len(self.train_loader)
        if self.limit_batches is not None:
            num_batches = min(num_batches, self.limit_batches)
            batches = itertools.islice(batches, num_batches)
        self.train_loader.sampler.set_epoch(self.epoch)  # this epoch's shuffle order
        loss_sum, examples = torch.zeros((), device=self.device), 0
        non_blocking = self.device.type == "cuda"  # pinned host memory: copies overlap compute
        self.model.train()
        # on stdout, with the epoch lines: stderr is for problems
        self.bar = tqdm(
            batches,
            total=num_batches,
            desc=f"epoch {self.epoch}",
            leave=False,
            file=sys.stdout,
            disable=not self.world.is_main,
        )
        try:
            for index, (inputs, targets) in enumerate(self.bar):
                self.stop_if_signalled()
                inputs = inputs.to(self.device, non_blocking=non_blocking)
                targets = targets.to(self.device, non_blocking=non_blocking)
                stepping = (index + 1) % accumulate == 0 or index + 1 == num_batches
                # micro-steps skip the gradient sync; the step's backward averages over ranks
                skip_sync = not stepping and self.no_sync is not None
                with self.no_sync() if skip_sync else contextlib.nullcontext():
                    with self.autocast:
                        loss = self.criterion(self.model(inputs), targets)
                    loss_sum += loss.detach().float() * len(inputs)
                    examples += len(inputs)
                    scaled = loss / accumulate if accumulate > 1 else loss
                    (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()
                if stepping:
                    self.optimizer_step()
                    self.global_step += 1
                    if self.global_step % self.config.trainer.log_every_n_steps == 0:
                        self.log_step(loss)  # with the learning rate this step used
                    if self.scheduler is not None and self.interval == "step":
                        self.scheduler.step()
        finally:
            self.bar.close()  # also when the run stops (a NaN loss): no stray bar
        all_reduce_sum(loss_sum, self.world)  # each rank runs the same number of examples
        return (loss_sum / (examples * self.world.size)).item()

    def optimizer_step(self) -> None:
        trainer, scaler = self.config.trainer, self.scaler
        if trainer.gradient_clip_val is not None:
            if scaler is not None:
                scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            if trainer.gradient_clip_algorithm == "norm":
                nn.utils.clip_grad_norm_(self.model.parameters(), trainer.gradient_clip_val)
            else:
                nn.utils.clip_grad_value_(self.model.parameters(), trainer.gradient_clip_val)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def log_step(self, loss: torch.Tensor) -> None:
        """The only per-step read from the device, every log_every_n_steps: logs the loss (mean
        over ranks) and stops the run when it is NaN or inf (on every rank alike)."""
        if self.world.distributed:
            loss = all_reduce_sum(loss.detach().clone(), self.world) / self.world.size
        metrics = {"train_loss_step": loss.item()}
        check_finite_loss(metrics["train_loss_step"], "train loss", self.epoch, self.global_step)
        if self.scheduler is not None:
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        self.logger.log(metrics, epoch=self.epoch, step=self.global_step - 1)  # this step's index
        self.bar.set_postfix_str(format_metrics(metrics), refresh=False)

    @torch.inference_mode()
    def evaluate(self, loader: DataLoader, stage: str) -> dict[str, float]:
        """Mean loss over `loader` (every rank's part, weighted by batch size) and the metrics."""
        self.module.eval()
        if self.metrics is not None:
            self.metrics.reset()
        total, count = torch.zeros((), device=self.device), 0
        non_blocking = self.device.type == "cuda"
        for inputs, targets in itertools.islice(loader, self.limit_batches):
            inputs = inputs.to(self.device, non_blocking=non_blocking)
            targets = targets.to(self.device, non_blocking=non_blocking)
            with self.autocast:
                outputs = self.module(inputs)
                loss = self.criterion(outputs, targets)
            if self.metrics is not None:
                self.metrics.update(outputs, targets)
            total += loss.float() * len(inputs)
            count += len(inputs)
        # one all-reduce for the loss sum and the count
        total = torch.stack([total, torch.tensor(float(count), device=self.device)])
        all_reduce_sum(total, self.world)
        results = {f"{stage}_loss": (total[0] / total[1]).item()}
        if self.metrics is not None:  # torchmetrics syncs its states across ranks in compute()
            results.update({f"{stage}_{k}": v.item() for k, v in self.metrics.compute().items()})
        return results
{% if p.early_stopping %}

    def should_stop(self, metrics: dict[str, float]) -> bool:
        """Early stopping: after `patience` validations without improvement, or a NaN or inf."""
        stopping, state = self.config.trainer.early_stopping, self.early_stopping
        current = metrics[stopping.monitor]
        if not math.isfinite(current):
            return True
        if improved(current, state["best"], stopping.mode, stopping.min_delta):
            state["best"], state["wait"] = current, 0
            return False
        state["wait"] += 1
        return state["wait"] >= stopping.patience
{% endif %}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly where this one stopped."""
        state: dict[str, Any] = {
{% if not p.fsdp %}
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
{% endif %}
            "epoch": self.epoch,
            "global_step": self.global_step,
            "rng": capture_rng_states(),
            "config": self.config.to_dict(),
            "data": self.data_schema,
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
{% if p.early_stopping %}
        state["early_stopping"] = dict(self.early_stopping)
{% endif %}
{% if p.best_checkpoint %}
        state["best"] = {"best": self.best}
{% endif %}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
{% if not p.fsdp %}
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
{% endif %}
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        restore_rng_states(state["rng"])
{% if p.early_stopping %}
        self.early_stopping = dict(state.get("early_stopping", self.early_stopping))
{% endif %}
{% if p.best_checkpoint %}
        self.best = state.get("best", {"best": self.best})["best"]
{% endif %}
{% if p.checkpointing %}

    def save(self, metrics: dict[str, float]) -> None:
        """best.ckpt when the monitored value improved, and last.ckpt ({{ "every rank its shards" if p.fsdp else "atomic writes" }})."""
        state, names = self.state_dict(), []
{% if p.best_checkpoint %}
        checkpoint = self.config.trainer.checkpoint
        if improved(metrics[checkpoint.monitor], self.best, checkpoint.mode):
            self.best = state["best"]["best"] = metrics[checkpoint.monitor]
            names.append("best.ckpt")
{% endif %}
        if self.config.trainer.checkpoint.save_last:
            names.append("last.ckpt")
        for name in names:
{% if p.fsdp %}
            path = self.checkpoint_dir / name
            save_sharded_checkpoint(self.module, self.optimizer, state, path, self.world)
{% else %}
            save_checkpoint(state, self.checkpoint_dir / name)
{% endif %}
{% endif %}
