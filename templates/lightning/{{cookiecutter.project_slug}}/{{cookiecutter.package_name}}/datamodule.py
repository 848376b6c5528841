"""The LightningDataModule around the datasets and loaders of data.py."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from .config import Config
from .data import Splits, load_splits, make_loader


class DataModule(pl.LightningDataModule):
    def __init__(self, config: Config, splits: Splits | None = None) -> None:
        super().__init__()
        self.config = config
        self.splits = splits  # train.py loads them first: the model's sizes come from the data

    def setup(self, stage: str) -> None:
        if self.splits is None:
            self.splits = load_splits(self.config)

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        on_cuda = trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)
        # The training loader's DistributedSampler (Lightning would add one under DDP) is made
        # here for one process too: its order, keyed on (seed, epoch), lets a resume continue
        # exactly. Lightning shards the evaluation loaders itself.
        shard = {}
        if shuffle and trainer is not None:
            shard = {"num_replicas": trainer.world_size, "rank": trainer.global_rank}
        return make_loader(dataset, self.config, shuffle=shuffle, pin_memory=on_cuda, **shard)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self) -> Any:
        return [] if self.splits.val is None else self._loader(self.splits.val, shuffle=False)

    def test_dataloader(self) -> Any:
        return [] if self.splits.test is None else self._loader(self.splits.test, shuffle=False)
