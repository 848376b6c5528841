"""The generated config.py: defaults, YAML, --set and flags, with errors that name the key."""

import importlib

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import project_module, write_files


@pytest.fixture(scope="module")
def config_module(tmp_path_factory):
    folder = write_files(
        render_project(Spec(), "pytorch", format_code=False), tmp_path_factory.mktemp("p")
    )
    with project_module(folder, "tabular_classifier", "config") as module:
        yield module, folder


def _load(module, argv):
    cli = importlib.import_module(f"{module.__package__}.cli")  # the command line's parser
    return module.load_config(cli.parse_args(argv))


def test_defaults_equal_the_config_file(config_module):
    module, folder = config_module
    from_file = _load(module, ["--config", str(folder / "config.yaml")])
    assert from_file == module.Config()
    assert from_file.trainer.max_epochs == 100 and from_file.optimizer.lr == 0.001


def test_flags_override_set_which_overrides_the_file(config_module, tmp_path):
    module, _ = config_module
    path = tmp_path / "c.yaml"
    path.write_text("optimizer:\n  lr: 1e-3\ntrainer:\n  max_epochs: 4\n  precision: 32\n")
    config = _load(
        module,
        [
            "--config",
            str(path),
            "--set",
            "trainer.max_epochs=6",
            "--set",
            "optimizer.lr=3e-4",
            "--max-epochs",
            "8",
            "--seed",
            "3",
        ],
    )
    assert config.trainer.max_epochs == 8 and config.trainer.seed == 3
    assert config.optimizer.lr == pytest.approx(3e-4)  # "3e-4" is a string to PyYAML
    assert config.trainer.precision == "32"


@pytest.mark.parametrize(
    "text, message",
    [
        ("trainer:\n  max_epoch: 3\n", "trainer.max_epoch: is not a config key"),
        ("data:\n  batch_size: many\n", "data.batch_size: expected a whole number > 0, got"),
        ("trainer:\n  deterministic: maybe\n", "trainer.deterministic: expected true or false"),
        ("trainer:\n  precision: '8-bit'\n", "trainer.precision"),
        ("model: [1, 2]\n", "model: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(config_module, tmp_path, text, message):
    module, _ = config_module
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(module.ConfigError, match=message):
        _load(module, ["--config", str(path)])


def test_resume_last_must_exist(config_module, tmp_path):
    module, _ = config_module
    runs = importlib.import_module(f"{module.__package__}.run_folder")
    with pytest.raises(module.ConfigError, match="no run in"):
        runs.resolve_run(str(tmp_path), None, "last")
    for name, started in [("old", "2026-01-01T00:00:00"), ("new", "2026-01-02T00:00:00")]:
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "run.json").write_text(f'{{"started": "{started}"}}')
    with pytest.raises(module.ConfigError, match="no checkpoint file"):
        runs.resolve_run(str(tmp_path), None, "last")
    (tmp_path / "new" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (tmp_path / "old" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    run = runs.resolve_run(str(tmp_path), None, "last")  # the newest run
    assert (run.path, run.resumed) == (tmp_path / "new", True)
    assert run.checkpoint == str(tmp_path / "new" / "checkpoints" / "last.ckpt")
    run = runs.resolve_run(str(tmp_path), "old", "last")  # --name picks the run
    assert run.checkpoint == str(tmp_path / "old" / "checkpoints" / "last.ckpt")
    checkpoint = str(tmp_path / "old" / "checkpoints" / "last.ckpt")
    assert runs.resolve_run(str(tmp_path), None, checkpoint).path == tmp_path / "old"
    with pytest.raises(module.ConfigError, match="already holds a run"):
        runs.resolve_run(str(tmp_path), "old", None)
    fork = runs.resolve_run(str(tmp_path), "fork", checkpoint)  # another name: a new run
    assert (fork.path, fork.checkpoint, fork.resumed) == (tmp_path / "fork", checkpoint, False)
    assert not runs.resolve_run(str(tmp_path), None, None).path.exists()  # nothing created


@pytest.mark.parametrize(
    "description",
    ["Speeds training up by 50%.", "Try %(prog)s --max-epochs 2 (100% synthetic).", "%s %% %d"],
)
def test_help_shows_any_description_as_written(tmp_path, capsys, description):
    """argparse %-formats a description that holds %(prog): the generated text is escaped."""
    import dataclasses

    spec = dataclasses.replace(Spec(), name="help-text", description=description)
    folder = write_files(render_project(spec, "pytorch", format_code=False), tmp_path)
    with (
        project_module(folder, "help_text", "cli") as module,
        pytest.raises(SystemExit) as exit_,
    ):
        module.parse_args(["--help"])
    assert exit_.value.code == 0
    assert description in " ".join(capsys.readouterr().out.split())
