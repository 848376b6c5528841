"""Checkpoints: resume options -> fit(ckpt_path=...); the final torch.save stays."""

from __future__ import annotations

from torch_scaffold.convert.result import KEPT


def apply(ctx) -> None:
    pass
