"""Configs compose, in both styles: --config files layered over config.yaml, --print-config,
and the optimizer, schedule and loss chosen at run time with their arguments."""

from __future__ import annotations

import contextlib
import importlib
import math

import pytest
import yaml

from torch_scaffold.generate import build_context, render_project

from .helpers import expect_clear_error, fit_args, project_module, spec_with, write_files
from .inprocess import train_losses

STYLES = ("pytorch", "lightning")


@pytest.fixture(scope="module")
def projects(tmp_path_factory, torch_one_thread):
    """{style: (project folder, its train module)} for the default spec, both imported."""
    root = tmp_path_factory.mktemp("compose")
    with contextlib.ExitStack() as stack:
        modules = {}
        for style in STYLES:
            spec = spec_with(name=f"compose-{style}")
            package = build_context(spec, style)["package_name"]
            folder = write_files(render_project(spec, style, format_code=False), root / style)
            modules[style] = (folder, stack.enter_context(project_module(folder, package)))
        yield modules


def _sibling(train, name: str):
    """The project module `name` beside its train module."""
    return importlib.import_module(train.__name__.rpartition(".")[0] + "." + name)


def _printed(train, argv, capsys) -> str:
    assert train.main([*argv, "--print-config"]) == {}
    return capsys.readouterr().out


@pytest.fixture
def edited(projects, monkeypatch):
    """Each project's config.yaml with a hand edit, and two experiment files beside it."""
    originals = {}
    for folder, _ in projects.values():
        config = folder / "config.yaml"
        originals[config] = config.read_text()
        config.write_text(originals[config].replace("  batch_size: 64", "  batch_size: 32"))
        (folder / "a.yaml").write_text("optimizer:\n  lr: 0.01\ntrainer:\n  seed: 3\n")
        (folder / "b.yaml").write_text(
            "optimizer:\n  lr: 0.02\n  name: SGD\n  momentum: 0.5\nscheduler:\n  name: cosine\n"
        )
    yield projects
    for config, text in originals.items():
        config.write_text(text)


def test_config_files_layer_over_config_yaml_in_order(edited, capsys, monkeypatch):
    printed = {}
    for style, (folder, train) in edited.items():
        monkeypatch.chdir(folder)  # config.yaml is read from the working folder
        printed[style] = _printed(train, ["--config", "a.yaml", "--config", "b.yaml"], capsys)
    assert printed["pytorch"] == printed["lightning"]
    config = yaml.safe_load(printed["pytorch"])
    assert config["data"]["batch_size"] == 32  # the edit in config.yaml survives
    assert config["trainer"]["seed"] == 3  # from a.yaml
    # b.yaml wins over a.yaml, and switching to SGD drops AdamW's betas from config.yaml
    assert config["optimizer"] == {
        "name": "SGD",
        "lr": 0.02,
        "weight_decay": 0.0,
        "decay_norm_and_bias": True,
        "momentum": 0.5,
    }
    assert config["scheduler"] == {"name": "cosine"}
    # --set and the flags come after every file
    folder, train = edited["pytorch"]
    monkeypatch.chdir(folder)
    argv = ["--config", "b.yaml", "--set", "optimizer.lr=0.05", "--seed", "9"]
    config = yaml.safe_load(_printed(train, argv, capsys))
    assert (config["optimizer"]["lr"], config["trainer"]["seed"]) == (0.05, 9)


@pytest.mark.parametrize("style", STYLES)
def test_dotted_flags_and_c_files_layer_in_command_line_order(edited, style, capsys, monkeypatch):
    """LightningCLI's shape: -c FILE (repeatable) and --section.key VALUE, each over the ones
    before it, in the order given; the same command line in both styles."""
    folder, train = edited[style]
    monkeypatch.chdir(folder)
    argv = ["-c", "a.yaml", "--trainer.max_epochs", "5", "--optimizer.lr", "3e-4"]
    config = yaml.safe_load(_printed(train, argv, capsys))
    assert config["trainer"]["max_epochs"] == 5 and config["trainer"]["seed"] == 3  # a.yaml
    assert config["optimizer"]["lr"] == pytest.approx(3e-4)  # the flag after a.yaml's 0.01
    assert config["data"]["batch_size"] == 32  # config.yaml stays the first layer
    # a file after a flag wins over it; a class argument is a dotted flag too
    argv = ["--optimizer.lr", "3e-4", "-c", "b.yaml", "--optimizer.momentum", "0.9"]
    config = yaml.safe_load(_printed(train, argv, capsys))
    assert (config["optimizer"]["name"], config["optimizer"]["lr"]) == ("SGD", 0.02)
    assert config["optimizer"]["momentum"] == 0.9
    argv = ["--config=b.yaml", "--trainer.max_epochs=7", "--max-epochs", "8"]
    config = yaml.safe_load(_printed(train, argv, capsys))
    assert config["trainer"]["max_epochs"] == 8  # the shorthand, last, wins
    assert _printed(train, ["--trainer.seed", "4"], capsys) == _printed(
        train, ["--set", "trainer.seed=4"], capsys
    )


@pytest.mark.parametrize("style", STYLES)
def test_errors_name_the_layer_and_line_that_set_the_value(edited, style, capsys, monkeypatch):
    folder, train = edited[style]
    monkeypatch.chdir(folder)
    (folder / "c.yaml").write_text("# later file\ntrainer:\n  seed: -1\n")
    expect_clear_error(
        train,
        ["--config", "a.yaml", "--config", "c.yaml"],
        capsys,
        "error: c.yaml:3: trainer.seed: must be >= 0 and <= 4294967295, got -1",
    )
    # a value only config.yaml sets keeps config.yaml's line after the files are layered
    config = folder / "config.yaml"
    lines = config.read_text().splitlines()
    line = lines.index("  batch_size: 32") + 1
    config.write_text(config.read_text().replace("  batch_size: 32", "  batch_size: 0"))
    expect_clear_error(
        train,
        ["--config", "a.yaml", "--config", "b.yaml"],
        capsys,
        f"error: config.yaml:{line}: data.batch_size: must be > 0, got 0",
    )


@pytest.mark.parametrize("style", STYLES)
def test_print_config_round_trips(projects, style, tmp_path, capsys, monkeypatch):
    folder, train = projects[style]
    monkeypatch.chdir(folder)
    config_module = _sibling(train, "config")
    argv = [
        "--set",
        "optimizer.name=rmsprop",
        "--set",
        "optimizer.alpha=0.9",
        "--set",
        "scheduler.name=multistep",
        "--set",
        "scheduler.milestones=[2, 4]",
        "--set",
        "loss.label_smoothing=0.1",
        "--max-epochs",
        "7",
    ]
    config = config_module.load_config(fit_args(config_module, argv))
    text = config_module.config_to_yaml(config)
    assert _printed(train, argv, capsys) == text
    saved = tmp_path / "resolved.yaml"
    saved.write_text(text)
    again = config_module.load_config(fit_args(config_module, ["--config", str(saved)]))
    assert again == config
    assert again.optimizer.args == {"alpha": 0.9}
    assert again.scheduler.args == {"milestones": [2, 4]}
    assert again.loss.args == {"label_smoothing": 0.1}
    assert config_module.config_from_dict(config.to_dict()) == config  # checkpoints' form


@pytest.mark.parametrize("style", STYLES)
def test_runtime_choices_build_the_named_classes(projects, style, monkeypatch):
    import torch

    folder, train = projects[style]
    monkeypatch.chdir(folder)
    optim, metrics = _sibling(train, "optim"), _sibling(train, "metrics")
    config_module = _sibling(train, "config")
    argv = ["--set", "optimizer.name=sgd", "--set", "optimizer.momentum=0.9"]
    argv += ["--set", "optimizer.nesterov=true", "--set", "scheduler.name=onecycle"]
    argv += ["--set", "loss.label_smoothing=0.2"]
    config = config_module.load_config(fit_args(config_module, argv))
    model = torch.nn.Linear(4, 3)
    optimizer = optim.build_optimizer(model, config)
    assert type(optimizer) is torch.optim.SGD
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["nesterov"]
    scheduler = optim.build_scheduler(optimizer, config, total_steps=100)
    assert type(scheduler) is torch.optim.lr_scheduler.OneCycleLR
    assert optim.scheduler_interval(config) == "step"
    assert scheduler.optimizer.param_groups[0]["max_lr"] == pytest.approx(0.01)  # 10 x lr
    loss = metrics.build_loss(config)
    assert type(loss) is torch.nn.CrossEntropyLoss and loss.label_smoothing == 0.2
    none = config_module.load_config(fit_args(config_module, []))
    assert optim.build_scheduler(optimizer, none, total_steps=100) is None


BAD_CHOICES = [
    (
        ["--set", "optimizer.name=adamax2"],
        "error: --set optimizer.name: 'adamax2' is not an optimizer in torch.optim",
        "hint: did you mean `adamax`?",
    ),
    (
        ["--set", "optimizer.name=sgd", "--set", "optimizer.momentun=0.9"],
        "error: --set optimizer.momentun: is not an argument of SGD",
        "hint: did you mean `momentum`?",
    ),
    (
        ["--set", "optimizer.betas=[0.9, 0.999, 0.1]"],
        (
            "error: --set optimizer.betas: expected a list of 2 values, each a number >= 0 and"
            " < 1, got [0.9, 0.999, 0.1]"
        ),
        "hint: optimizer.betas takes a list of 2 values, each a number >= 0 and < 1",
    ),
    (
        ["--set", "optimizer.eps=-1"],
        "error: --set optimizer.eps: torch.optim.AdamW refuses it: Invalid epsilon value: -1",
        "hint: check the arguments of torch.optim.AdamW",
    ),
    (
        ["--set", "loss.name=mse"],
        "error: --set loss.name: 'mse' does not fit this project's task (multiclass)",
        "hint: use one of: cross_entropy",
    ),
    (
        ["--set", "scheduler.name=cosine_annealing"],
        "error: --set scheduler.name: 'cosine_annealing' is not a schedule of this project",
        "hint: did you mean `cosine`?",
    ),
    (
        ["--set", "scheduler.gamma=0.5"],
        "error: --set scheduler.gamma: is not an argument of NoneSchedule, which takes none",
        "hint: remove it, or choose another scheduler",
    ),
    (  # jsonargparse's dotted flag: the same check
        ["--optimizer.lr", "0"],
        "error: --optimizer.lr: must be > 0 and <= 10, got 0",
        "hint: optimizer.lr takes a number > 0 and <= 10",
    ),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("argv, error, hint", BAD_CHOICES)
def test_bad_runtime_choice_is_one_clear_error(
    projects, style, argv, error, hint, capsys, monkeypatch
):
    folder, train = projects[style]
    monkeypatch.chdir(folder)
    line = expect_clear_error(train, argv, capsys, error, hint=hint.removeprefix("hint: "))
    assert line == error


def test_regression_project_switches_its_loss(tmp_path, torch_one_thread):
    spec = spec_with(name="reg-loss", task="regression")
    folder = write_files(render_project(spec, "pytorch", format_code=False), tmp_path / "p")
    with project_module(folder, "reg_loss") as train:
        import torch

        config = _sibling(train, "config")
        chosen = config.load_config(
            fit_args(config, ["--set", "loss.name=smooth_l1", "--set", "loss.beta=0.5"])
        )
        loss = _sibling(train, "metrics").build_loss(chosen)
        assert type(loss) is torch.nn.SmoothL1Loss and loss.beta == 0.5


# Parity after switching at run time: the optimizer and schedule (and a loss argument) that
# neither project was generated with.
SWITCHES = [
    pytest.param(
        {},
        ["optimizer.name=sgd", "optimizer.momentum=0.9", "scheduler.name=cosine"],
        id="sgd-cosine",
    ),
    pytest.param(
        {"task": "regression", "scheduler.name": "step"},
        [
            "optimizer.name=RMSprop",
            "optimizer.alpha=0.9",
            "scheduler.name=warmup_cosine",
            "scheduler.warmup_steps=5",
            "loss.name=smooth_l1",
            "loss.beta=0.5",
        ],
        id="rmsprop-warmup-smooth-l1",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("changes, assignments", SWITCHES)
def test_switched_optimizer_and_schedule_keep_parity(
    changes, assignments, tmp_path, torch_one_thread
):
    spec = spec_with(name="switched", **changes, **{"data.num_samples": 512})
    steps, epochs = 30, 5  # 7 batches per epoch: the window spans several epochs
    switched = [arg for assignment in assignments for arg in ("--set", assignment)]
    traces = {}
    for style in STYLES:
        project = write_files(render_project(spec, style), tmp_path / style)
        for name, extra in (("switched", switched), ("as generated", [])):
            argv = ["--max-epochs", str(epochs), "--accelerator", "cpu", *extra]
            argv += ["--output-dir", str(tmp_path / style / name.replace(" ", "-"))]
            traces[style, name] = train_losses(project, "switched", argv, steps)
    plain, lightning = traces["pytorch", "switched"], traces["lightning", "switched"]
    assert len(plain) == len(lightning) == steps
    assert all(math.isfinite(loss) for loss in plain)
    assert max(abs(a - b) for a, b in zip(plain, lightning)) <= 1e-6
    # the switch took effect: the losses differ from the project's own choices
    assert max(abs(a - b) for a, b in zip(plain, traces["pytorch", "as generated"])) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_resume_keeps_the_optimizer_it_restores(style, tmp_path, capsys, torch_one_thread):
    spec = spec_with(name="resumed", **{"data.num_samples": 128})
    folder = write_files(render_project(spec, style, format_code=False), tmp_path / style)
    output = str(tmp_path / "out")
    with project_module(folder, "resumed") as train:
        train.main(["--max-epochs", "1", "--accelerator", "cpu", "--output-dir", output])
        capsys.readouterr()
        argv = ["--max-epochs", "2", "--accelerator", "cpu", "--output-dir", output]
        argv += ["--resume", "last", "--set", "optimizer.name=sgd"]
        expect_clear_error(
            train,
            argv,
            capsys,
            "--set optimizer.name: 'sgd' differs from 'adamw'",
            "a resumed run keeps its configuration",
        )
