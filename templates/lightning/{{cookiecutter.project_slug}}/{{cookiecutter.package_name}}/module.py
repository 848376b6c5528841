{% set p = cookiecutter | project %}
"""The LightningModule: the model, its loss, metrics and optimizer in Lightning's hooks."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from .config import config_from_dict
from .metrics import build_loss, build_metrics, check_finite_loss
from .model import build_model
from .optim import (
    build_optimizer,
    build_scheduler,
    check_resumable,
    plateau_monitor,
    scheduler_interval,
)
from .rng import capture_rng_states, restore_rng_states

Batch = tuple[torch.Tensor, torch.Tensor]


class LitModel(pl.LightningModule):
    def __init__(
        self,
        config: dict[str, Any],
        input_shape: list[int],
        num_outputs: int,
        steps_per_epoch: int,
{% if p.input_kind == "tokens" %}
        vocab_size: int,
{% endif %}
{% if p.class_weights %}
        class_weights: list[float] | None = None,
{% endif %}
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # stored in checkpoints: load_from_checkpoint needs no args
        self.data_schema: dict[str, Any] = {}  # data.Schema: what the model reads and predicts
        self.config = config_from_dict(config)
        self.steps_per_epoch = steps_per_epoch
        self.model = build_model(
            self.config.model, input_shape, num_outputs{{ ", vocab_size" if p.input_kind == "tokens" }}
        )
        if self.config.trainer.compile:
            self.model.compile()  # in place: state_dict keys stay the same
{% if p.class_weights %}
        weights = None if class_weights is None else torch.tensor(class_weights)
        self.criterion = build_loss(self.config, weights)
{% else %}
        self.criterion = build_loss(self.config)
{% endif %}
        self.train_loss_sum = torch.zeros(())  # this epoch's losses, summed on the device
        self.train_batches = 0
        # torchmetrics objects: updated per batch, computed (synced across ranks) and reset
        # at the end of each epoch
        self.val_metrics = build_metrics(num_outputs)
        self.test_metrics = build_metrics(num_outputs)
        self.logging_enabled = True

    def setup(self, stage: str) -> None:
        # Trainer(barebones=True) forbids self.log; benchmarks time this module under it.
        self.logging_enabled = not self.trainer.barebones
{% if p.model_type == "cnn" %}
        if self.trainer.strategy.root_device.type == "cuda":  # convolutions run faster in NHWC
            self.model.to(memory_format=torch.channels_last)
{% endif %}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    # The epoch's mean loss is summed here and the step loss logged only on the steps Lightning
    # writes: self.log(on_step, on_epoch) on every step made the default MLP's step 1.4x slower.
    def on_train_epoch_start(self) -> None:
        self.train_loss_sum = torch.zeros((), device=self.device)
        self.train_batches = 0

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        loss = self.criterion(self.model(inputs), targets)
        self.train_loss_sum += loss.detach()
        self.train_batches += 1
        every = self.trainer.log_every_n_steps  # 0 under barebones: logging_enabled is False
        if self.logging_enabled and (self.trainer.global_step + 1) % every == 0:
            # the mean over ranks (every rank logs on the same steps); a NaN or inf stops
            # the run on every rank alike (the check reads it back: at this interval only)
            value = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean")
            self.log("train_loss_step", value, on_step=True, prog_bar=True)
            step = self.trainer.global_step + 1  # steps taken, this one included
            check_finite_loss(value, "train loss", self.current_epoch, step)
        return loss

    def on_train_epoch_end(self) -> None:
        # Runs after validation and before the checkpoint callbacks save this epoch.
        if self.logging_enabled:
            mean = self.train_loss_sum / max(self.train_batches, 1)
            mean = self.trainer.strategy.reduce(mean, reduce_op="mean")  # the same on every rank
            self.log("train_loss_epoch", mean, on_epoch=True, sync_dist=True)
            step = self.trainer.global_step
            check_finite_loss(mean, "mean train loss", self.current_epoch, step)
            val_loss = self.trainer.callback_metrics.get("val_loss")
            if val_loss is not None:  # already the mean over ranks
                check_finite_loss(val_loss, "validation loss", self.current_epoch, step)

    def _evaluate(self, batch: Batch, stage: str) -> None:
        inputs, targets = batch
        outputs = self.model(inputs)
        (self.val_metrics if stage == "val" else self.test_metrics).update(outputs, targets)
        if self.logging_enabled:
            self.log(
                f"{stage}_loss",
                self.criterion(outputs, targets),
                prog_bar=stage == "val",
                batch_size=len(inputs),
                sync_dist=True,  # the mean over every rank's shard (a no-op in one process)
            )

    def _log_metrics(self, stage: str) -> None:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if self.logging_enabled:
            values = {f"{stage}_{name}": value for name, value in metrics.compute().items()}
            # compute() has already synced the values across ranks, so every rank holds the
            # same numbers; sync_dist only tells Lightning so (it warns under DDP otherwise).
            self.log_dict(values, prog_bar=stage == "val", sync_dist=True)
        metrics.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: torch.Tensor | Batch, batch_idx: int) -> torch.Tensor:
        """The model's outputs for a batch of inputs, or of (inputs, targets) as the data
        module's loaders give them (predict.py turns outputs into predictions)."""
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(inputs)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.config)
        scheduler = build_scheduler(optimizer, self.config, self.steps_per_epoch)
        if scheduler is None:
            return optimizer
        schedule = {
            "scheduler": scheduler,
            "interval": scheduler_interval(self.config),
            "frequency": 1,
            "name": "lr",  # LearningRateMonitor's column name
        }
        monitor = plateau_monitor(self.config)
        if monitor is not None:
            schedule["monitor"] = monitor  # stepped with this value
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # Lightning restores model, optimizer, scheduler, loops and callbacks; RNG states are ours.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = capture_rng_states()
        checkpoint["data"] = self.data_schema  # predict reads new data with it

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_resumable(checkpoint["hyper_parameters"]["config"], self.config)
        if "rng" in checkpoint:
            restore_rng_states(checkpoint["rng"])
