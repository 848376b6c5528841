"""The LightningDataModule around the shared data code (data.py)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader

from .config import Config
from .data import Splits, load_splits, make_loader


class DataModule(pl.LightningDataModule):
    """Shuffling is keyed on (seed, epoch) and Lightning sets the epoch on the sampler, so a
    resumed run continues the same order without extra state in the checkpoint."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.splits: Splits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:  # train.py calls it first (the model's shapes), then Lightning
            self.splits = load_splits(self.config)

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        on_cuda = self.trainer is not None and isinstance(self.trainer.accelerator, CUDAAccelerator)
        pin_memory = on_cuda
        # Under DDP each rank loads its own shard (the Trainer leaves samplers to data.py).
        world_size = 1 if self.trainer is None else self.trainer.world_size
        rank = 0 if self.trainer is None else self.trainer.global_rank
        return make_loader(
            dataset,
            self.config,
            shuffle=shuffle,
            pin_memory=pin_memory,
            num_replicas=world_size,
            rank=rank,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self) -> Any:
        return [] if self.splits.val is None else self._loader(self.splits.val, shuffle=False)

    def test_dataloader(self) -> Any:
        return [] if self.splits.test is None else self._loader(self.splits.test, shuffle=False)
