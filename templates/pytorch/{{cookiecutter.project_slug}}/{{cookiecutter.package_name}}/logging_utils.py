{% set p = cookiecutter | project %}
"""Each logged row to metrics.csv, TensorBoard (when installed){{ " and the trackers" if p.extra_loggers }}."""

from __future__ import annotations

import csv
import importlib.util
{% if "wandb" in p.extra_loggers %}
import os
{% endif %}
from pathlib import Path
{% if p.extra_loggers %}
from typing import Any, Protocol

from .config import Config


class Tracker(Protocol):
    """An experiment tracker, logged to next to the CSV and TensorBoard logs."""

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...
{% endif %}
{% if "wandb" in p.extra_loggers %}


class WandbTracker:
    """Weights & Biases; offline unless WANDB_MODE says otherwise (upload later: wandb sync)."""

    def __init__(self, project: str, save_dir: str, config: dict[str, Any]) -> None:
        import wandb

        os.environ.setdefault("WANDB_MODE", "offline")
        os.makedirs(save_dir, exist_ok=True)
        self.run = wandb.init(project=project, dir=save_dir, config=config)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()
{% endif %}
{% if "mlflow" in p.extra_loggers %}


def _flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"optimizer.lr": ...}, as MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class MLflowTracker:
    """An MLflow run in the tracking store (a local folder by default)."""

    def __init__(self, tracking_uri: str, experiment: str, config: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment(experiment)
        mlflow.start_run()
        mlflow.log_params(_flat_params(config))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.mlflow.end_run()
{% endif %}
{% if p.extra_loggers %}


def build_trackers(config: Config) -> list[Tracker]:
    """The trackers switched on in config.logging (their packages were checked with the config)."""
    trackers: list[Tracker] = []
{% if "wandb" in p.extra_loggers %}
    if config.logging.wandb:
        trackers.append(
            WandbTracker({{ p.project_slug|pyrepr }}, config.output_dir, config.to_dict())
        )
{% endif %}
{% if "mlflow" in p.extra_loggers %}
    if config.logging.mlflow:
        trackers.append(
            MLflowTracker(
                config.logging.mlflow_tracking_uri, {{ p.project_slug|pyrepr }}, config.to_dict()
            )
        )
{% endif %}
    return trackers
{% endif %}


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in metrics.items())


class MetricLogger:
    """Writes each logged row to metrics.csv (fixed columns), TensorBoard{{ " and the trackers" if p.extra_loggers }}.
    A resumed run (resumed_step: its checkpoint's step) appends to its metrics.csv, and
    TensorBoard hides what the interrupted run logged after that step: one curve per run."""

    def __init__(
        self,
        log_dir: Path | None,  # None: log nothing
        columns: list[str],
        csv_log: bool,
        tensorboard: bool,
{% if p.extra_loggers %}
        trackers: list[Tracker] | None = None,
{% endif %}
        resumed_step: int | None = None,
    ):
{% if p.extra_loggers %}
        self.trackers = trackers or []
{% endif %}
        self._csv_file = self._csv = self._tensorboard = None
        if log_dir is None:
            return
        log_dir.mkdir(parents=True, exist_ok=True)
        if csv_log:
            path = log_dir / "metrics.csv"
            append = resumed_step is not None and path.is_file()
            mode = "a" if append else "w"
            self._csv_file = open(path, mode, newline="", encoding="utf-8")  # noqa: SIM115
            self._csv = csv.DictWriter(self._csv_file, fieldnames=["epoch", "step", *columns])
            if not append:
                self._csv.writeheader()
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            # steps are numbered from 0: the first new row is at the checkpoint's step
            self._tensorboard = SummaryWriter(log_dir=str(log_dir), purge_step=resumed_step)

    def log(self, metrics: dict[str, float], *, epoch: int, step: int) -> None:
        if self._csv is not None:
            self._csv.writerow({"epoch": epoch, "step": step, **metrics})
            self._csv_file.flush()
        if self._tensorboard is not None:
            for name, value in metrics.items():
                self._tensorboard.add_scalar(name, value, step)
{% if p.extra_loggers %}
        for tracker in self.trackers:
            tracker.log(metrics, step)
{% endif %}

    def close(self) -> None:
        for writer in (self._csv_file, self._tensorboard{{ ", *self.trackers" if p.extra_loggers }}):
            if writer is not None:
                writer.close()
