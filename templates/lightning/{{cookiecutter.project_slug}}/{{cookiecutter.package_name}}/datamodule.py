"""The LightningDataModule around the datasets and loaders of data.py."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from .config import Config
from .data import Splits, load_splits, make_loader


class DataModule(pl.LightningDataModule):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.splits: Splits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:  # train.py calls it first (the model's shapes), then Lightning
            self.splits = load_splits(self.config)

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        on_cuda = trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)
        if not shuffle or trainer is None:  # under DDP, Lightning shards these itself
            return make_loader(dataset, self.config, shuffle=shuffle, pin_memory=on_cuda)
        # The DistributedSampler Lightning would put in under DDP, made here for one process
        # too: its order, keyed on (seed, epoch), lets a resumed run continue exactly.
        return make_loader(
            dataset,
            self.config,
            shuffle=True,
            pin_memory=on_cuda,
            num_replicas=trainer.world_size,
            rank=trainer.global_rank,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self) -> Any:
        return [] if self.splits.val is None else self._loader(self.splits.val, shuffle=False)

    def test_dataloader(self) -> Any:
        return [] if self.splits.test is None else self._loader(self.splits.test, shuffle=False)
