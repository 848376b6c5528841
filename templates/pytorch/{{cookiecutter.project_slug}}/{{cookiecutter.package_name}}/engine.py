{% set p = cookiecutter | project %}
"""The training loop: train and validate each epoch, log, checkpoint, stop early; evaluate.

Each batch's loss is divided by accumulate_grad_batches (also in a shorter final
group); the optimizer steps every N batches and on the last batch of the epoch;
gradients are clipped right before the step (unscaled first under fp16);
epoch schedules advance after validation, step schedules after each optimizer
step. Nothing in the hot loop reads a value back from the device except at the
logging interval.

Under torchrun (several processes) the model arrives wrapped in DDP: gradients are
averaged across ranks at the step's backward only (no_sync on accumulation
micro-steps), logged values are all-reduced, and rank 0 alone prints and logs.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
from pathlib import Path
from typing import Any

import torch
from torch import nn
{% if p.fsdp %}
from torch.distributed.fsdp import FSDPModule
{% endif %}
from torch.utils.data import DataLoader

{% if p.early_stopping or p.best_checkpoint %}
from .callbacks import {{ "EarlyStopping, " if p.early_stopping }}{{ "ImprovementTracker" if p.best_checkpoint }}
{% endif %}
{% if p.checkpointing %}
from .checkpoint import {{ "save_sharded_checkpoint" if p.fsdp else "save_checkpoint" }}
{% endif %}
from .config import Config
{% if p.fsdp %}
from .distributed import World, all_reduce_sum, gradient_sync_skipper, without_ddp
{% else %}
from .distributed import World, all_reduce_sum, without_ddp
{% endif %}
from .logging_utils import MetricLogger, Progress
from .metrics import MetricSet, check_finite_loss
from .optim import plateau_monitor, scheduler_interval
from .rng import capture_rng_states, restore_rng_states
from .run_folder import Interrupted, StopSignals
from .runtime import autocast_context, grad_scaler, resolve_precision


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
        logger: MetricLogger,
        checkpoint_dir: Path | None,
        limit_batches: int | None = None,
        world: World | None = None,
        metrics: MetricSet | None = None,
    ) -> None:
{% if p.fsdp %}
        self.model = model  # what trains: the network (sharded in place by FSDP), or DDP
{% else %}
        self.model = model  # what trains: the network, or DDP around it
{% endif %}
        self.module = without_ddp(model)  # the network: evaluated (no gradient sync) and saved
        self.world = world or World()  # None: a single process
        self.criterion = criterion
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval(config)
        self.plateau_monitor = plateau_monitor(config)
        self.config = config
        self.device = device
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.logger = logger
        self.checkpoint_dir = checkpoint_dir  # None: save nothing (e.g. --fast-dev-run)
        self.limit_batches = limit_batches  # None: whole epochs
        self.signals: StopSignals | None = None  # a fit's: SIGTERM and SIGINT end it
        self.progress = Progress(enabled=self.world.is_main)
{% if p.fsdp %}
        # Accumulation micro-steps skip the gradient reduction; one process has none.
        self.skip_sync = gradient_sync_skipper(model)
{% else %}
        # Accumulation micro-steps skip DDP's gradient all-reduce; one process has none.
        self.skip_sync = getattr(model, "no_sync", None)
{% endif %}
        self.sync_always = contextlib.nullcontext()
        self.metrics = metrics  # None: the loss only
        self.data_schema: dict[str, Any] = {}  # data.Schema: what the model reads and predicts
        precision = resolve_precision(device, config.trainer.precision)
{% if p.fsdp %}
        # Sharded, FSDP's MixedPrecisionPolicy casts the parameters instead of autocast.
        sharded = isinstance(model, FSDPModule)
        self.autocast = contextlib.nullcontext() if sharded else autocast_context(device, precision)
{% else %}
        self.autocast = autocast_context(device, precision)
{% endif %}
        self.scaler = grad_scaler(device, precision)
        self.non_blocking = device.type == "cuda"
        self.parameters = [param for param in model.parameters() if param.requires_grad]
        self.epoch = 0  # epochs completed
        self.global_step = 0  # optimizer steps taken
{% if p.early_stopping %}
        stopping = config.trainer.early_stopping
        self.early_stopping = EarlyStopping(
            stopping.monitor, stopping.mode, stopping.patience, stopping.min_delta
        )
{% endif %}
{% if p.best_checkpoint %}
        checkpoint = config.trainer.checkpoint
        self.best = ImprovementTracker(checkpoint.monitor, checkpoint.mode)
{% endif %}

    # -- fitting ---------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train from self.epoch to max_epochs; returns the last epoch's metrics."""
        metrics: dict[str, float] = {}
        while self.epoch < self.config.trainer.max_epochs:
            metrics = {"train_loss_epoch": self.train_epoch()}
            # a NaN or inf loss stops the run before this epoch's checkpoints are written
            check_finite_loss(
                metrics["train_loss_epoch"], "mean train loss", self.epoch, self.global_step
            )
            if self.val_loader is not None:
                metrics.update(self.evaluate(self.val_loader, "val"))
                check_finite_loss(
                    metrics["val_loss"], "validation loss", self.epoch, self.global_step
                )
            if self.plateau_monitor is not None:
                # as Lightning does: the monitored value decides, after validation
                self.scheduler.step(metrics[self.plateau_monitor])
            elif self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            self.epoch += 1
            # logged at the index of the epoch's last step (steps are numbered from 0)
            self.logger.log(metrics, epoch=self.epoch - 1, step=self.global_step - 1)
            if self.world.is_main:
                values = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                print(f"epoch {self.epoch - 1}: {values}")
{% if p.early_stopping %}
            stop = self.early_stopping.should_stop(metrics)
{% else %}
            stop = False
{% endif %}
{% if p.checkpointing %}
            if self.checkpoint_dir is not None:
                self.save(metrics)
{% endif %}
            self.stop_if_signalled(every_rank=True)  # this epoch's checkpoint is written
            if stop or self.limit_batches is not None:
                break
        return metrics

    def stop_if_signalled(self, every_rank: bool = False) -> None:
        """End the fit after SIGTERM or SIGINT, at a step boundary, where its files are whole.
        One process checks before every batch; several check together once an epoch (one
        all-reduce), so that no rank is left waiting for the others."""
        if self.signals is None:
            return
        if not self.world.distributed:
            self.signals.check()
        elif every_rank:
            received = torch.tensor(float(self.signals.received or 0), device=self.device)
            if all_reduce_sum(received, self.world).item() > 0:
                raise Interrupted(self.signals.received or signal.SIGTERM)

    def train_epoch(self) -> float:
        model, criterion = self.model, self.criterion
        device, non_blocking, scaler = self.device, self.non_blocking, self.scaler
        accumulate = self.config.trainer.accumulate_grad_batches
        log_every = self.config.trainer.log_every_n_steps
        num_batches = len(self.train_loader)
        batches: Any = self.train_loader
        if self.limit_batches is not None:
            num_batches = min(num_batches, self.limit_batches)
            batches = itertools.islice(batches, num_batches)
        self.train_loader.sampler.set_epoch(self.epoch)  # this epoch's shuffle order
        loss_sum = torch.zeros((), device=device)  # this epoch's losses, weighted by batch size
        examples = 0
        model.train()
        batches = self.progress.wrap(batches, num_batches, f"epoch {self.epoch}")
        skip_sync, sync_always = self.skip_sync, self.sync_always
        try:
            for batch_index, (inputs, targets) in enumerate(batches):
                self.stop_if_signalled()
                inputs = inputs.to(device, non_blocking=non_blocking)
                targets = targets.to(device, non_blocking=non_blocking)
                stepping = (batch_index + 1) % accumulate == 0 or batch_index + 1 == num_batches
                with sync_always if stepping or skip_sync is None else skip_sync():
                    with self.autocast:
                        loss = criterion(model(inputs), targets)
                    loss_sum += loss.detach().float() * len(inputs)
                    examples += len(inputs)
                    scaled = loss / accumulate if accumulate > 1 else loss
                    if scaler is None:
                        scaled.backward()
                    else:
                        scaler.scale(scaled).backward()
                if stepping:
                    self.optimizer_step()
                    self.global_step += 1
                    if self.global_step % log_every == 0:
                        self.log_step(loss)  # with the learning rate this step used
                    if self.scheduler is not None and self.scheduler_interval == "step":
                        self.scheduler.step()
        finally:
            self.progress.close()  # also when the run stops (a NaN loss): no stray bar
        # The mean over all ranks' examples (each rank runs the same number).
        all_reduce_sum(loss_sum, self.world)
        return (loss_sum / (examples * self.world.size)).item()

    def optimizer_step(self) -> None:
        trainer = self.config.trainer
        scaler = self.scaler
        if scaler is not None and trainer.gradient_clip_val is not None:
            scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if trainer.gradient_clip_val is not None:
            if trainer.gradient_clip_algorithm == "norm":
                nn.utils.clip_grad_norm_(self.parameters, trainer.gradient_clip_val)
            else:
                nn.utils.clip_grad_value_(self.parameters, trainer.gradient_clip_val)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def log_step(self, loss: torch.Tensor) -> None:
        """The only per-step host sync, once every log_every_n_steps (every rank calls it):
        logs the loss, and stops the run when it is NaN or inf (every rank sees the same
        all-reduced value, so all stop together)."""
        if self.world.distributed:
            loss = all_reduce_sum(loss.detach().clone(), self.world) / self.world.size
        metrics = {"train_loss_step": loss.item()}
        check_finite_loss(metrics["train_loss_step"], "train loss", self.epoch, self.global_step)
        if self.scheduler is not None:
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]  # as LearningRateMonitor does
        self.logger.log(metrics, epoch=self.epoch, step=self.global_step - 1)  # this step's index
        self.progress.show(metrics)

    @torch.inference_mode()
    def evaluate(self, loader: DataLoader, stage: str) -> dict[str, float]:
        """Mean loss over `loader` (all ranks' shards, weighted by batch size) and the metrics."""
        model = self.module
        model.eval()
        if self.metrics is not None:
            self.metrics.reset()
        total = torch.zeros((), device=self.device)
        count = 0
        batches: Any = loader
        if self.limit_batches is not None:
            batches = itertools.islice(loader, self.limit_batches)
        for inputs, targets in batches:
            inputs = inputs.to(self.device, non_blocking=self.non_blocking)
            targets = targets.to(self.device, non_blocking=self.non_blocking)
            with self.autocast:
                outputs = model(inputs)
                loss = self.criterion(outputs, targets)
            if self.metrics is not None:
                self.metrics.update(outputs, targets)
            size = inputs.shape[0]
            total += loss.float() * size
            count += size
        if self.world.distributed:  # one all-reduce for the loss sum and the count
            packed = torch.stack([total, torch.tensor(float(count), device=self.device)])
            all_reduce_sum(packed, self.world)
            total, count = packed[0], packed[1]
        results = {f"{stage}_loss": (total / count).item()}
        if self.metrics is not None:  # torchmetrics syncs its states across ranks in compute()
            results.update({f"{stage}_{k}": v.item() for k, v in self.metrics.compute().items()})
        return results

    # -- checkpoints -----------------------------------------------------------------------

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
        state["early_stopping"] = self.early_stopping.state_dict()
{% endif %}
{% if p.best_checkpoint %}
        state["best"] = self.best.state_dict()
{% endif %}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
{% if not p.fsdp %}
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
{% endif %}
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        restore_rng_states(state["rng"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
{% if p.early_stopping %}
        if "early_stopping" in state:
            self.early_stopping.load_state_dict(state["early_stopping"])
{% endif %}
{% if p.best_checkpoint %}
        if "best" in state:
            self.best.load_state_dict(state["best"])
{% endif %}

{% if p.checkpointing %}
    def save(self, metrics: dict[str, float]) -> None:
{% if p.fsdp %}
        """best.ckpt when the monitored metric improved, and last.ckpt (every rank its shards)."""
{% else %}
        """best.ckpt when the monitored metric improved, and last.ckpt (atomic writes)."""
{% endif %}
        state: dict[str, Any] | None = None
{% if p.best_checkpoint %}
        current = self.best.value(metrics)
        if self.best.improved(current):
            self.best.best = current
            state = self.state_dict()
{% if p.fsdp %}
            save_sharded_checkpoint(
                self.module, self.optimizer, state, self.checkpoint_dir / "best.ckpt", self.world
            )
{% else %}
            save_checkpoint(state, self.checkpoint_dir / "best.ckpt")
{% endif %}
{% endif %}
        if self.config.trainer.checkpoint.save_last:
{% if p.fsdp %}
            state = state or self.state_dict()
            save_sharded_checkpoint(
                self.module, self.optimizer, state, self.checkpoint_dir / "last.ckpt", self.world
            )
{% else %}
            save_checkpoint(state or self.state_dict(), self.checkpoint_dir / "last.ckpt")
{% endif %}
{% endif %}
