{% set p = cookiecutter | project %}
"""The LightningModule: the model, its loss, metrics and optimizer in Lightning's hooks."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from .config import config_from_dict
from .metrics import build_loss, build_metrics
from .model import build_model
from .optim import (
    build_optimizer,
    build_scheduler,
    optimizer_steps_per_epoch,
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
        self.model = build_model(self.config.model, input_shape, num_outputs{{ ", vocab_size" if p.input_kind == "tokens" }})
        if self.config.trainer.compile:
            self.model.compile()  # in place: state_dict keys stay the same
{% if p.class_weights %}
        weights = None if class_weights is None else torch.tensor(class_weights)
        self.criterion = build_loss(self.config, weights)
{% else %}
        self.criterion = build_loss(self.config)
{% endif %}
        self.val_metrics = build_metrics(num_outputs, prefix="val_")
        self.test_metrics = build_metrics(num_outputs, prefix="test_")
        # one example: the model summary shows each layer's output shape and FLOPs
        self.example_input_array = torch.zeros(1, *input_shape{{ ", dtype=torch.long" if p.input_kind == "tokens" }})
{% if p.model_type == "cnn" %}

    def setup(self, stage: str) -> None:
        if self.trainer.strategy.root_device.type == "cuda":  # convolutions run faster in NHWC
            self.model.to(memory_format=torch.channels_last)
{% endif %}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        loss = self.criterion(self(inputs), targets)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, targets = batch
        outputs = self(inputs)
        self.log("val_loss", self.criterion(outputs, targets), prog_bar=True, sync_dist=True)
        self.val_metrics.update(outputs, targets)
        self.log_dict(self.val_metrics, prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, targets = batch
        outputs = self(inputs)
        self.log("test_loss", self.criterion(outputs, targets), sync_dist=True)
        self.test_metrics.update(outputs, targets)
        self.log_dict(self.test_metrics)

    def predict_step(self, batch: torch.Tensor | Batch, batch_idx: int) -> torch.Tensor:
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch  # (inputs, targets) too
        return self(inputs)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model, self.config)
        steps = self.trainer.estimated_stepping_batches
        if self.trainer.fast_dev_run:  # its one batch runs the schedule of the full run
            trainer = self.config.trainer
            batches = len(self.trainer.datamodule.train_dataloader())
            steps = optimizer_steps_per_epoch(batches, trainer.accumulate_grad_batches)
            steps *= trainer.max_epochs
        scheduler = build_scheduler(optimizer, self.config, steps)
        if scheduler is None:
            return optimizer
        # name: LearningRateMonitor's column; monitor: what a plateau schedule is stepped with
        interval = scheduler_interval(self.config)
        schedule = {"scheduler": scheduler, "interval": interval, "name": "lr"}
        if plateau_monitor(self.config) is not None:
            schedule["monitor"] = plateau_monitor(self.config)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # Lightning restores the model, optimizer, schedule, loops and callbacks; RNG states are ours.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = capture_rng_states()
        checkpoint["data"] = self.data_schema  # predict reads new data with it

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rng" in checkpoint:
            restore_rng_states(checkpoint["rng"])
