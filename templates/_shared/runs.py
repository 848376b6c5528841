"""Compare runs: the table of `runs`, the curves of `plot`, and the grid of `fit --sweep`.

They read the run folders under output_dir (run_folder.py): run.json, config.yaml and
logs/metrics.csv.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
import socket
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError
from .run_folder import read_info, run_folders

RUNS_HINT = f"list the runs with: python -m {__package__} runs"
MAX_SWEEP_POINTS = 1000  # one run per point, one after another: more is a typo, not a plan


# -- runs: the comparison table --------------------------------------------------------------


def list_runs(output_dir: str, names: Iterable[str] | None = None) -> str:
    """A table of the runs in output_dir (or only those named), oldest first: name, start, best
    monitored value, status, and the config values that differ between the listed runs."""
    wanted = None if names is None else set(names)
    runs = []
    for folder in run_folders(output_dir):
        if wanted is None or folder.name in wanted:
            info = read_info(folder) or {"status": "unreadable run.json"}
            config = _config(folder)
            started = str(info.get("started") or "")
            try:
                when = datetime.fromisoformat(started)
                shown, order = when.strftime("%Y-%m-%d %H:%M:%S"), when.timestamp()
            except ValueError:  # no start time: ordered by when run.json was last written
                shown, order = started or "?", (folder / "run.json").stat().st_mtime
            cells = [folder.name, shown, _best(folder, info, config), _status(info)]
            runs.append((order, cells, config))
    if not runs:
        return f"no runs in {output_dir} yet; train one with: python -m {__package__} fit"
    runs.sort(key=lambda run: run[0])
    configs = [config for _, _, config in runs if config]  # one without config.yaml: no part
    keys = dict.fromkeys(key for config in configs for key in config)  # in first-seen order
    differing = [k for k in keys if len({_show(c[k]) if k in c else None for c in configs}) > 1]
    table = [["name", "started", "best", "status", "differences"]]
    for _, cells, config in runs:
        changes = [f"{key}={_show(config[key])}" for key in differing if key in config]
        table.append([*cells, " ".join(changes)])
    widths = [max(map(len, column)) for column in zip(*table, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _config(folder: Path) -> dict[str, Any]:
    """config.yaml as {dotted key: value}; {} when it is missing or unreadable."""
    try:
        tree = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return _flatten(tree) if isinstance(tree, dict) else {}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: Any) -> str:
    """A config value as it would be written after --set."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _status(info: dict[str, Any]) -> str:
    """run.json's status, or `stopped` for a run still marked running whose process on this
    host is gone (killed with -9, or the machine went down)."""
    status, pid = str(info.get("status") or "?"), info.get("pid")
    if status == "running" and isinstance(pid, int) and info.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return "stopped"
        except PermissionError:  # it exists, as another user's process
            pass
    return status


def _best(folder: Path, info: dict[str, Any], config: dict[str, Any]) -> str:
    """monitor=value: run.json's best, or the best value in logs/metrics.csv."""
    monitor = info.get("monitor") or config.get("trainer.checkpoint.monitor")
    if not monitor:
        return "-"
    best = info.get("best")
    if not isinstance(best, (int, float)):
        mode = info.get("mode") or config.get("trainer.checkpoint.mode", "min")
        values = read_curves(folder / "logs" / "metrics.csv").get(monitor, {}).values()
        best = (max if mode == "max" else min)(values, default=None)
    return "-" if best is None else f"{monitor}={best:.4g}"


def read_curves(path: Path) -> dict[str, dict[int, float]]:
    """metrics.csv -> {column: {epoch: value}}; empty when there is no file. A later row for
    the same epoch (a resumed run repeats it) replaces the earlier one."""
    curves: dict[str, dict[int, float]] = {}
    if not path.is_file():
        return curves
    with open(path, newline="", encoding="utf-8") as file:
        for index, row in enumerate(csv.DictReader(file)):
            epoch = _number(row.get("epoch"))
            for column, text in row.items():
                value = _number(text)
                if column not in (None, "epoch", "step") and value is not None:
                    curves.setdefault(column, {})[index if epoch is None else int(epoch)] = value
    return curves


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# -- plot: training and validation curves ----------------------------------------------------


def plot_runs(run_dirs: list[str], output: str) -> Any:
    """Loss (train dashed, val solid) and each validation metric by epoch, one colour per run,
    into the PNG `output`; returns the matplotlib Figure."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no display, no global state
    except ImportError:
        raise ConfigError("plot needs matplotlib", hint="pip install -e .[plot]") from None
    if not run_dirs:
        raise ConfigError("plot needs at least one run", hint=RUNS_HINT)
    if not output.lower().endswith(".png"):
        raise ConfigError("plot writes a PNG", f"--output {output}", "name it e.g. curves.png")
    runs = {}
    for run_dir in run_dirs:
        path = Path(run_dir) / "logs" / "metrics.csv"
        if not Path(run_dir).is_dir():
            raise ConfigError(f"{run_dir}: no such run folder", hint=RUNS_HINT)
        if not path.is_file():
            hint = "the curves come from logs/metrics.csv, written when logging.csv is true"
            raise ConfigError(f"{run_dir}: no logs/metrics.csv to plot", hint=hint)
        runs[run_dir] = curves = read_curves(path)
        if "train_loss_epoch" not in curves and "val_loss" not in curves:
            message = f"{path}: no train_loss_epoch or val_loss values to plot"
            raise ConfigError(message, hint="plot a run that finished at least one epoch")
    columns = [column for curves in runs.values() for column in curves]
    metrics = [c for c in dict.fromkeys(columns) if c.startswith("val_") and c != "val_loss"]
    panels = ["loss", *metrics]
    width, height = min(len(panels), 3), math.ceil(len(panels) / 3)
    figure = Figure(figsize=(5 * width, 3.6 * height), layout="constrained")
    axes = {}
    for index, panel in enumerate(panels):
        axes[panel] = figure.add_subplot(height, width, index + 1, title=panel, xlabel="epoch")
        axes[panel].xaxis.get_major_locator().set_params(integer=True)
    for index, (run_dir, curves) in enumerate(runs.items()):
        name = Path(run_dir).name
        lines = [("loss", "train_loss_epoch", "--", f"{name} train")]
        lines += [("loss", "val_loss", "-", f"{name} val")]
        lines += [(metric, metric, "-", name) for metric in metrics]
        for panel, column, style, label in lines:
            if curves.get(column):
                epochs, values = zip(*sorted(curves[column].items()), strict=True)
                colour = f"C{index % 10}"
                axes[panel].plot(epochs, values, style, color=colour, marker="o", ms=3, label=label)
    for ax in axes.values():
        if ax.lines:
            ax.legend(fontsize="small")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format="png", dpi=100)
    return figure


# -- fit --sweep: a grid of --set overrides --------------------------------------------------


def sweep_points(assignments: list[str]) -> list[list[str]]:
    """--sweep KEY=V1,V2 (repeatable) -> every combination, each a list of KEY=VALUE overrides
    for --set. Commas inside brackets stay in a value: model.hidden_sizes=[64,32],[128]."""
    axes: dict[str, list[str]] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        values = [value.strip() for value in re.split(r",(?![^[{]*[]}])", raw)]
        points = math.prod(map(len, axes.values())) * len(values)
        problem = None
        if not sep or not all(part.isidentifier() for part in key.split(".")):
            problem = "expected KEY=V1,V2,...", "e.g. --sweep optimizer.lr=1e-3,3e-4"
        elif key in axes:
            problem = f"{key} is swept twice", f"list all its values once: {key}=V1,V2,..."
        elif not raw.strip():
            problem = f"{key} lists no values", f"e.g. --sweep {key}=V1,V2"
        elif points > MAX_SWEEP_POINTS:
            problem = (
                f"the grid has {points:,} points, over the limit of {MAX_SWEEP_POINTS:,} runs",
                "sweep fewer values, or run the sweep in parts",
            )
        elif not all(values):
            problem = f"{key} has an empty value", f"separate values by commas: {key}=V1,V2"
        elif len(set(values)) < len(values):
            repeated = next(value for value in values if values.count(value) > 1)
            problem = f"{key} repeats the value {repeated}", "list each value once"
        if problem is not None:
            shown = assignment if len(assignment) <= 60 else f"{assignment[:56]}..."  # one line
            raise ConfigError(problem[0], f"--sweep {shown!r}", problem[1])
        axes[key] = values
    return [
        [f"{key}={value}" for key, value in zip(axes, point, strict=True)]
        for point in itertools.product(*axes.values())
    ]


def sweep_run_name(point: list[str]) -> str:
    """The run folder's name for one sweep point: lr=0.001-dropout=0.1 (the last part of each
    key, unless two keys share it), safe in a path on every system."""
    pairs = [assignment.partition("=")[::2] for assignment in point]
    keys = [key.rsplit(".", 1)[-1] for key, _ in pairs]
    if len(set(keys)) < len(keys):
        keys = [key for key, _ in pairs]
    text = "-".join(f"{key}={value}" for key, (_, value) in zip(keys, pairs, strict=True))
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", re.sub(r"[][{}'\" ]", "", text))
    if len(name) > 100:  # keep paths short; the hash keeps long names apart
        name = f"{name[:90]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name
