"""Compare runs: the table of `runs`, the curves of `plot`, and the grid of `fit --sweep`.

Each run folder under output_dir holds config.yaml (the resolved config), run.json (name,
started, status, monitor, mode, best) and logs/metrics.csv. A folder without run.json is not
a run (run.json is written when a run starts) and is left out of the table.
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
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError

RUNS_HINT = f"list the runs with: python -m {__package__} runs"
# a sweep trains one run per point, one after another: more is a typo, not a plan
MAX_SWEEP_POINTS = 1000


# -- runs: the comparison table --------------------------------------------------------------


def list_runs(output_dir: str, names: Iterable[str] | None = None) -> str:
    """A table of the runs in output_dir (or only those named), oldest first: name, start, best
    monitored value, status, and the config values that differ between the listed runs."""
    root = Path(output_dir)
    children = root.iterdir() if root.is_dir() else []
    folders = [path for path in children if (path / "run.json").is_file()]
    if names is not None:
        wanted = set(names)
        folders = [path for path in folders if path.name in wanted]
    if not folders:
        return f"no runs in {output_dir} yet; train one with: python -m {__package__} fit"
    runs = sorted((_read_run(path) for path in folders), key=lambda run: run["sort"])
    differing = _differing_keys([run["config"] for run in runs if run["config"]])
    rows = [["name", "started", "best", "status", "differences"]]
    for run in runs:
        config = run["config"]
        changes = [f"{key}={_show(config[key])}" for key in differing if key in config]
        rows.append([run["name"], run["started"], run["best"], run["status"], " ".join(changes)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _read_run(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict):
        info = {"status": "unreadable run.json"}
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        config = None
    config = _flatten(config) if isinstance(config, dict) else {}
    started = str(info.get("started") or "")
    try:
        when = datetime.fromisoformat(started)
        shown, sort = when.strftime("%Y-%m-%d %H:%M:%S"), when.timestamp()
    except ValueError:  # no start time: last written
        shown, sort = started or "?", (folder / "run.json").stat().st_mtime
    return {
        "name": folder.name,
        "started": shown,
        "sort": sort,
        "status": _status(info),
        "best": _best(folder, info, config),
        "config": config,
    }


def _status(info: dict[str, Any]) -> str:
    """run.json's status; `stopped` for a run still marked running whose process is gone
    (killed with -9, or by the machine going down), when it ran on this host."""
    status = str(info.get("status") or "?")
    pid = info.get("pid")
    if status != "running" or not isinstance(pid, int) or os.name != "posix":
        return status
    if info.get("host") != socket.gethostname():
        return status  # another machine's process: it cannot be checked from here
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return "stopped"
    except PermissionError:  # it exists, as another user's process
        pass
    return status


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    keys = dict.fromkeys(key for config in configs for key in config)  # first-seen order
    missing = object()
    return [key for key in keys if len({_show(c.get(key, missing)) for c in configs}) > 1]


def _show(value: Any) -> str:
    """A config value as it would be written after --set."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _best(folder: Path, info: dict[str, Any], config: dict[str, Any]) -> str:
    """monitor=value: run.json's best, or the best value in logs/metrics.csv."""
    monitor = info.get("monitor") or config.get("trainer.checkpoint.monitor")
    mode = info.get("mode") or config.get("trainer.checkpoint.mode", "min")
    if not monitor:
        return "-"
    best = info.get("best")
    if not isinstance(best, (int, float)) or isinstance(best, bool):
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
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plot needs matplotlib", hint="pip install -e .[plot]") from None
    if not run_dirs:
        raise ConfigError("plot needs at least one run", hint=RUNS_HINT)
    if not output.lower().endswith(".png"):
        raise ConfigError("plot writes a PNG", f"--output {output}", "name it e.g. curves.png")
    runs = {}
    for run_dir in run_dirs:
        if not Path(run_dir).is_dir():
            raise ConfigError(f"{run_dir}: no such run folder", hint=RUNS_HINT)
        path = Path(run_dir) / "logs" / "metrics.csv"
        if not path.is_file():
            raise ConfigError(
                f"{run_dir}: no logs/metrics.csv to plot",
                hint="the curves come from logs/metrics.csv, written when logging.csv is true",
            )
        curves = read_curves(path)
        if "train_loss_epoch" not in curves and "val_loss" not in curves:
            raise ConfigError(
                f"{path}: no train_loss_epoch or val_loss values to plot",
                hint="plot a run that finished at least one epoch",
            )
        runs[run_dir] = curves
    metrics = [
        column
        for column in dict.fromkeys(column for curves in runs.values() for column in curves)
        if column.startswith("val_") and column != "val_loss"
    ]
    panels = ["loss", *metrics]
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5 * columns, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)  # renders to a file; no display needed
    grid = figure.subplots(rows, columns, squeeze=False).flatten()
    for unused in grid[len(panels) :]:
        figure.delaxes(unused)
    axes = dict(zip(panels, grid[: len(panels)], strict=True))
    for panel, ax in axes.items():
        ax.set(title=panel, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    names = [Path(run_dir).name for run_dir in runs]
    unique = len(set(names)) == len(names)
    for index, (run_dir, curves) in enumerate(runs.items()):
        colour = f"C{index % 10}"
        label = names[index] if unique else run_dir
        _draw(axes["loss"], curves.get("train_loss_epoch"), colour, "--", f"{label} train")
        _draw(axes["loss"], curves.get("val_loss"), colour, "-", f"{label} val")
        for metric in metrics:
            _draw(axes[metric], curves.get(metric), colour, "-", label)
    for ax in axes.values():
        if ax.lines:
            ax.legend(fontsize="small")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format="png", dpi=100)
    return figure


def _draw(ax: Any, points: dict[int, float] | None, colour: str, style: str, label: str) -> None:
    if points:
        epochs = sorted(points)
        values = [points[epoch] for epoch in epochs]
        ax.plot(epochs, values, style, color=colour, marker="o", markersize=3, label=label)


# -- fit --sweep: a grid of --set overrides --------------------------------------------------


def sweep_points(assignments: list[str]) -> list[list[str]]:
    """--sweep KEY=V1,V2 (repeatable) -> every combination, each a list of KEY=VALUE overrides
    for --set. Commas inside brackets stay in a value: model.hidden_sizes=[64,32],[128]."""
    axes: dict[str, list[str]] = {}
    for assignment in assignments:
        shown = assignment if len(assignment) <= 60 else f"{assignment[:56]}..."  # one line
        where = f"--sweep {shown!r}"
        key, sep, raw = assignment.partition("=")
        if not sep or not key or not all(part.isidentifier() for part in key.split(".")):
            raise ConfigError(
                "expected KEY=V1,V2,...", where, "e.g. --sweep optimizer.lr=1e-3,3e-4"
            )
        if key in axes:
            raise ConfigError(
                f"{key} is swept twice", where, f"list all its values once: {key}=V1,V2,..."
            )
        if not raw.strip():
            raise ConfigError(f"{key} lists no values", where, f"e.g. --sweep {key}=V1,V2")
        values = _split_values(raw)
        points = math.prod(len(axis) for axis in axes.values()) * len(values)
        if points > MAX_SWEEP_POINTS:  # refused before the values are checked or combined
            raise ConfigError(
                f"the grid has {points:,} points, over the limit of {MAX_SWEEP_POINTS:,} runs",
                where,
                "sweep fewer values, or run the sweep in parts",
            )
        if not all(values):
            raise ConfigError(
                f"{key} has an empty value", where, f"separate values by commas: {key}=V1,V2"
            )
        repeated = sorted(value for value, count in Counter(values).items() if count > 1)
        if repeated:
            raise ConfigError(
                f"{key} repeats the value {repeated[0]}", where, "list each value once"
            )
        axes[key] = values
    return [
        [f"{key}={value}" for key, value in zip(axes, point, strict=True)]
        for point in itertools.product(*axes.values())
    ]


def _split_values(raw: str) -> list[str]:
    values, depth, current = [], 0, ""
    for char in raw:
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    return [*values, current.strip()]


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
