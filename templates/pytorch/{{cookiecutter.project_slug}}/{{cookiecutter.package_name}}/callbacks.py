{% set p = cookiecutter | project %}
{% if p.early_stopping or p.best_checkpoint %}
"""Metric tracking that Lightning ships as callbacks: early stopping and the best checkpoint."""

from __future__ import annotations

import math
from typing import Any


class ImprovementTracker:
    """Remembers the best value of a monitored metric (strictly better counts, as in Lightning)."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = min_delta
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, metrics: dict[str, float]) -> float:
        if self.monitor not in metrics:
            raise KeyError(f"monitored metric {self.monitor!r} not logged; have {sorted(metrics)}")
        return metrics[self.monitor]

    def improved(self, current: float) -> bool:
        if self.mode == "min":
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
{% if p.early_stopping %}


class EarlyStopping(ImprovementTracker):
    """Stop after `patience` validations without improvement, or on a non-finite value."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.wait = 0

    def should_stop(self, metrics: dict[str, float]) -> bool:
        current = self.value(metrics)
        if not math.isfinite(current):
            return True
        if self.improved(current):
            self.best = current
            self.wait = 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.wait = state["wait"]
{% endif %}
{% endif %}
