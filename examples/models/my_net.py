"""A hand-written model for examples/specs/custom_model.yaml.

`model.type: custom` with `model.source: ../models/my_net.py:GatedMLP` copies this file into
the generated project as <package>/custom_model.py and builds `GatedMLP(**model.args)`.
"""

from __future__ import annotations

import torch
from torch import nn


class GatedBlock(nn.Module):
    """A linear layer whose output is scaled by a learned sigmoid gate."""

    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__()
        self.value = nn.Linear(width_in, width_out)
        self.gate = nn.Linear(width_in, width_out)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.value(inputs) * torch.sigmoid(self.gate(inputs))


class GatedMLP(nn.Module):
    """Gated blocks, then a linear head: inputs [batch, in_features] -> [batch, num_outputs]."""

    def __init__(
        self, in_features: int, num_outputs: int, hidden: int = 32, depth: int = 2
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            blocks.append(GatedBlock(width, hidden))
            width = hidden
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(inputs.flatten(1)))
