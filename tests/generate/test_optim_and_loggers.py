"""Optimizers, schedules and experiment loggers of the generated projects.

Parameter groups and schedule shapes are checked on the generated optim.py itself; the
wandb/mlflow trackers (not installed here) through stand-in modules in the plain style, and
the message both styles give when a tracker is switched on but its package is missing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import os
import sys
import types

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import expect_clear_error, project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")


def _project(spec, style, folder):
    return write_files(render_project(spec, style), folder), build_context(spec, style)


def _optimizer_for(tmp_path, **changes):
    spec = spec_with(name="optim", **changes)
    folder, context = _project(spec, "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "train"):
        package = sys.modules[context["package_name"]]
        config = package.config.Config()
        model = package.model.build_model(config.model, config.data.input_shape, 3)
        optimizer = package.optim.build_optimizer(model, config)
        return model, optimizer, package.optim, config


def test_norm_and_bias_parameters_get_no_weight_decay(tmp_path):
    model, optimizer, _, _ = _optimizer_for(
        tmp_path,
        **{
            "model.type": "cnn",
            "optimizer.name": "sgd",
            "optimizer.nesterov": True,
            "optimizer.weight_decay": 0.05,
            "optimizer.decay_norm_and_bias": False,
        },
    )
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert decay["nesterov"] and decay["momentum"] == 0.9
    norms = [p for m in model.modules() if "Norm" in type(m).__name__ for p in m.parameters()]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    assert norms and {id(p) for p in norms + biases} == {id(p) for p in no_decay["params"]}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_decay_for_all_parameters_is_one_group(tmp_path):
    _, optimizer, _, _ = _optimizer_for(
        tmp_path, **{"optimizer.name": "rmsprop", "optimizer.weight_decay": 0.01}
    )
    (group,) = optimizer.param_groups
    assert type(optimizer).__name__ == "RMSprop"
    assert group["weight_decay"] == 0.01 and group["alpha"] == 0.99


def test_warmup_then_cosine_per_step(tmp_path):
    _, optimizer, optim, config = _optimizer_for(
        tmp_path,
        **{
            "optimizer.lr": 0.1,
            "scheduler.name": "warmup_cosine",
            "scheduler.warmup_steps": 4,
            "scheduler.eta_min": 0.01,
            "trainer.max_epochs": 10,
        },
    )
    assert optim.scheduler_interval(config) == "step"
    scheduler = optim.build_scheduler(optimizer, config, total_steps=60)
    rates = []
    for _ in range(60):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert rates[4] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.01, abs=1e-4)
    assert all(a >= b for a, b in itertools.pairwise(rates[4:]))  # decays after the warm-up
    state = scheduler.state_dict()  # resumable: plain data only
    assert state["last_epoch"] == 60


def test_warmup_longer_than_training_is_a_config_error(tmp_path):
    _, optimizer, optim, config = _optimizer_for(
        tmp_path, **{"scheduler.name": "warmup_cosine", "scheduler.warmup_steps": 30}
    )
    config.trainer.max_epochs = 2
    with pytest.raises(optim.ConfigError, match="scheduler.warmup_steps: 30"):
        optim.build_scheduler(optimizer, config, total_steps=20)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"scheduler.name": "multistep", "scheduler.milestones": (2, 3)}, [1, 1, 0.1, 0.01]),
        ({"scheduler.name": "exponential", "scheduler.gamma": 0.5}, [1, 0.5, 0.25, 0.125]),
        ({"scheduler.name": "step", "scheduler.step_size": 2}, [1, 1, 0.1, 0.1]),
    ],
)
def test_epoch_schedules(tmp_path, changes, expected):
    _, optimizer, optim, config = _optimizer_for(tmp_path, **changes)
    assert optim.scheduler_interval(config) == "epoch"
    scheduler = optim.build_scheduler(optimizer, config, total_steps=20)
    rates = []
    for _ in expected:
        rates.append(optimizer.param_groups[0]["lr"] / config.optimizer.lr)
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx(expected)


# --- loggers ---------------------------------------------------------------------------------


def _module(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() sees it
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _fake_trackers(calls: list):
    class Run:
        def log(self, metrics, step):
            calls.append(("wandb.log", dict(metrics), step))

        def finish(self):
            calls.append(("wandb.finish",))

    def init(project, dir, config):
        calls.append(("wandb.init", project, dir, config["optimizer"]["lr"]))
        return Run()

    def record(name):
        return lambda *args, **kwargs: calls.append((f"mlflow.{name}", args, kwargs))

    mlflow = _module(
        "mlflow",
        **{
            name: record(name)
            for name in ("set_tracking_uri", "set_experiment", "start_run", "end_run")
        },
        log_params=lambda params: calls.append(("mlflow.log_params", params)),
        log_metrics=lambda metrics, step: calls.append(("mlflow.log_metrics", dict(metrics), step)),
    )
    return {"wandb": _module("wandb", init=init), "mlflow": mlflow}


LOGGERS_ON = {
    "logging.wandb": True,
    "logging.mlflow": True,
    "data.num_samples": 128,
    "trainer.max_epochs": 2,
}


@pytest.mark.slow  # trains two epochs
def test_plain_style_sends_metrics_to_wandb_and_mlflow(tmp_path, monkeypatch, torch_one_thread):
    calls: list = []
    for name, module in _fake_trackers(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    spec = spec_with(name="tracked", **LOGGERS_ON)
    folder, context = _project(spec, "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"]) as train:
        metrics = train.main(["--accelerator", "cpu", "--output-dir", str(folder / "out")])
    assert os.environ["WANDB_MODE"] == "offline"
    names = [call[0] for call in calls]
    assert names[0] == "wandb.init" and calls[0][1:] == ("tracked", str(folder / "out"), 1e-3)
    assert ("mlflow.set_tracking_uri", ("file:./mlruns",), {}) in calls
    assert ("mlflow.set_experiment", ("tracked",), {}) in calls
    params = next(call[1] for call in calls if call[0] == "mlflow.log_params")
    assert params["optimizer.lr"] == 1e-3 and params["logging.wandb"] is True
    logged = [call[1] for call in calls if call[0] == "wandb.log"]
    assert [row["val_loss"] for row in logged if "val_loss" in row][-1] == metrics["val_loss"]
    assert any("test_loss" in row for row in logged)
    assert logged == [call[1] for call in calls if call[0] == "mlflow.log_metrics"]
    assert names[-2:] == ["wandb.finish", "mlflow.end_run"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_missing_tracker_package_is_one_clear_error(style, tracker, tmp_path, capsys):
    if importlib.util.find_spec(tracker) is not None:
        pytest.skip(f"{tracker} is installed here; this checks the message without it")
    spec = spec_with(name="tracked", **{f"logging.{tracker}": True})
    folder, context = _project(spec, style, tmp_path / style)
    with project_module(folder, context["package_name"]) as train:
        line = expect_clear_error(
            train,
            ["--accelerator", "cpu", "--fast-dev-run"],
            capsys,
            hint=f"pip install -e .[{tracker}], or set logging.{tracker}: false",
        )
    assert line.startswith("error: config.yaml:")  # the line that switches it on
    assert line.endswith(
        f": logging.{tracker}: is true, but the {tracker} package is not installed"
    )
    pyproject = (folder / "pyproject.toml").read_text()
    assert f'{tracker} = ["{tracker}>=' in pyproject  # the extra the message names exists


def test_trackers_are_extras_only_when_switched_on():
    plain = render_project(spec_with(name="p"), "pytorch", format_code=False)
    assert "wandb" not in plain["pyproject.toml"] and "mlflow" not in plain["pyproject.toml"]
    assert "wandb" not in plain["config.yaml"]
    assert not any("import wandb" in text or "import mlflow" in text for text in plain.values())
    lightning = render_project(spec_with(name="p", **LOGGERS_ON), "lightning")
    train = lightning["p/train.py"]
    assert "WandbLogger(" in train and "MLFlowLogger(" in train
    assert 'os.environ.setdefault("WANDB_MODE", "offline")' in train


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["none", "cosine"])
def test_learning_rate_is_logged_only_with_a_scheduler_in_both_styles(
    tmp_path, torch_one_thread, scheduler
):
    """A constant rate is not worth a TensorBoard event per logging interval (Lightning's
    LearningRateMonitor is added only with a scheduler); a scheduled one is logged per step."""
    import csv

    spec = spec_with(name="lrlog", **{"scheduler.name": scheduler, "trainer.max_epochs": 2})
    headers = {}
    for style in STYLES:
        folder, context = _project(spec, style, tmp_path / style)
        output = tmp_path / style / "out"
        with project_module(folder, context["package_name"], "train") as train:
            train.main(["--accelerator", "cpu", "--output-dir", str(output)])
        (metrics,) = output.glob("*/logs/metrics.csv")
        with open(metrics, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        lr_columns = [name for name in rows[0] if name == "lr" or name.startswith("lr-")]
        headers[style] = lr_columns
        if lr_columns:
            rates = [float(row[lr_columns[0]]) for row in rows if row[lr_columns[0]]]
            assert len(rates) >= 2 and rates[-1] < rates[0]  # the schedule is visible
    assert bool(headers["pytorch"]) == bool(headers["lightning"]) == (scheduler != "none")
