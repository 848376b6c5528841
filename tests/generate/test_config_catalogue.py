"""A hand-edited config is checked as `scaffold spec check` checks a spec, in both styles.

Every case in tests/bad_configs/ is a config file (`NN-name.yaml`) given to a generated
project's `--config`, and `NN-name.expected` is the exact stderr: one `error:` line (file,
line, key) and a `hint:` line, exit code 2, no traceback, identical in both styles. A case's
first lines may name the project it runs in (`# project: NAME`, default `default`) and extra
command-line arguments (`# argv: --seed -5`). Inputs that cannot be committed as text files
(binary, /dev/zero, a folder) are built at run time below, and a hand edit of the project's own
config.yaml is checked too.
"""

from __future__ import annotations

import contextlib
import random
import shlex
from pathlib import Path

import pytest

from torch_scaffold.errors import SpecError
from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec import load_spec_text

from .helpers import fifo_released_after, project_module, spec_with, write_files

CATALOGUE = Path(__file__).resolve().parents[1] / "bad_configs"
CASES = sorted(path.name for path in CATALOGUE.glob("*.yaml"))
STYLES = ("pytorch", "lightning")
PROJECTS = {
    "default": {},
    "sgd-multistep-cnn": {
        "model.type": "cnn",
        "optimizer.name": "sgd",
        "optimizer.nesterov": True,
        "scheduler.name": "multistep",
    },
    "transformer-lm-cosine": {
        "task": "language_modelling",
        "model.type": "transformer",
        "scheduler.name": "cosine",
    },
    "rnn-lm-plateau": {
        "task": "language_modelling",
        "model.type": "rnn",
        "scheduler.name": "plateau",
    },
    "csv-regression": {
        "task": "regression",
        "data.source": "csv",
        "data.path": "data/houses.csv",
        "data.target": "price",
    },
    "image-folder": {"model.type": "cnn", "data.source": "image_folder", "data.path": "images"},
    "fsdp": {"trainer.strategy": "fsdp"},
}


def _header(name: str) -> tuple[str, list[str]]:
    """(project, extra argv) from a case's leading comment lines."""
    project, argv = "default", []
    for line in (CATALOGUE / name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        if key == "project":
            project = value.strip()
        elif key == "argv":
            argv = shlex.split(value)
    return project, argv


class Accepted(AssertionError):
    """The config passed its checks: run() was reached."""


@pytest.fixture(scope="module")
def projects(tmp_path_factory, torch_one_thread):
    """{(project, style): the imported train module}, every project imported at once (their
    package names differ); run() is replaced: a case must fail before training starts."""
    root = tmp_path_factory.mktemp("config-catalogue")
    with contextlib.ExitStack() as stack:
        modules = {}
        for project, changes in PROJECTS.items():
            for style in STYLES:
                spec = spec_with(name=f"cfg-{project}-{style}", **changes)
                package = build_context(spec, style)["package_name"]
                folder = write_files(
                    render_project(spec, style, format_code=False), root / f"{project}-{style}"
                )
                train = stack.enter_context(project_module(folder, package))
                modules[project, style] = train
        yield modules


def run_main(train, argv, monkeypatch, capsys) -> list[str]:
    """train.main(argv) -> its stderr lines; it must exit 2 without a traceback."""

    def accepted(*args, **kwargs):
        raise Accepted("the config was accepted")

    monkeypatch.setattr(train, "run", accepted)
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert sum(line.startswith("error: ") for line in lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert all(line.startswith("hint: ") for line in lines[1:]), lines
    return lines


def test_catalogue_covers_the_issue():
    """The values of the issue (19 crashed with a traceback, 8 were silently accepted) and a
    case for every project above."""
    assert len(CASES) >= 60
    for name in CASES:
        assert (CATALOGUE / name).with_suffix(".expected").is_file(), f"{name}: no .expected"
    assert {_header(name)[0] for name in CASES} == set(PROJECTS)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", CASES)
def test_bad_config_is_one_clear_error(projects, name, style, monkeypatch, capsys):
    project, argv = _header(name)
    monkeypatch.chdir(CATALOGUE)  # messages name the file as it was given
    lines = run_main(projects[project, style], ["--config", name, *argv], monkeypatch, capsys)
    expected = (CATALOGUE / name).with_suffix(".expected").read_text("utf-8").splitlines()
    assert lines == expected


def _built_cases(folder: Path) -> dict[str, tuple[str, str]]:
    """--config argument -> (expected error line, expected hint line) for inputs built here."""
    rng = random.Random(3)
    (folder / "image.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(200))
    (folder / "latin1.yaml").write_bytes("trainer:\n  seed: 1\n# café\n".encode("latin-1"))
    (folder / "huge.yaml").write_bytes(b"# padding\n" * 150_000)
    (folder / "a-folder.yaml").mkdir()
    fifo_released_after(folder / "fifo.yaml")  # read, it would wait for a writer
    binary = "hint: pass a YAML file like the project's config.yaml"
    return {
        "image.yaml": ("error: image.yaml: is not a YAML config (binary, or over 1 MB)", binary),
        "/dev/zero": ("error: /dev/zero: is a character device, not a regular file", binary),
        "fifo.yaml": ("error: fifo.yaml: is a FIFO (named pipe), not a regular file", binary),
        "latin1.yaml": ("error: latin1.yaml: is not valid UTF-8 text", "hint: save it as UTF-8"),
        "huge.yaml": ("error: huge.yaml: is not a YAML config (binary, or over 1 MB)", binary),
        "a-folder.yaml": (
            "error: a-folder.yaml: cannot read (Is a directory)",
            "hint: check the --config path",
        ),
        "missing.yaml": (
            "error: missing.yaml: cannot read (No such file or directory)",
            "hint: check the --config path",
        ),
    }


@pytest.mark.parametrize("style", STYLES)
def test_unreadable_config_files_are_one_clear_error(
    projects, style, tmp_path, monkeypatch, capsys
):
    cases = _built_cases(tmp_path)
    monkeypatch.chdir(tmp_path)
    for argument, expected in cases.items():
        lines = run_main(projects["default", style], ["--config", argument], monkeypatch, capsys)
        assert lines == list(expected), argument


@pytest.mark.parametrize("style", STYLES)
def test_hand_edited_config_yaml_is_checked(style, tmp_path, monkeypatch, capsys):
    """The project's own config.yaml, read without --config, with its line numbers."""
    spec = spec_with(name="edited")
    folder = write_files(render_project(spec, style, format_code=False), tmp_path / style)
    config = folder / "config.yaml"
    original = config.read_text()
    lines = original.splitlines()
    lr_line = lines.index("  lr: 0.001") + 1
    with project_module(folder, "edited") as train:
        config.write_text(original.replace("  lr: 0.001", "  lr: -1"))
        assert run_main(train, [], monkeypatch, capsys) == [
            f"error: config.yaml:{lr_line}: optimizer.lr: must be > 0 and <= 10, got -1",
            "hint: optimizer.lr takes a number > 0 and <= 10",
        ]
        # a second `optimizer:` section at the end: YAML would keep only that one
        config.write_text(original + "optimizer:\n  lr: 0.5\n")
        assert run_main(train, [], monkeypatch, capsys) == [
            f"error: config.yaml:{len(lines) + 1}: optimizer: is written twice",
            "hint: remove one; YAML keeps only the last",
        ]


# A bad value of one field that the spec loader refuses, the project refuses too, naming the
# key as it was set (the wording differs: the project's is jsonargparse's, the catalogue above
# holds it). Not here: `model.hidden_sizes=[]` (an MLP without hidden layers trains) and
# `data.batch_size=010`, which jsonargparse reads as 10 (YAML 1.2), as it is written.
SAME_AS_SPEC = [
    "optimizer.lr=-1",
    "optimizer.lr=0",
    "optimizer.lr=.nan",
    "optimizer.lr=1e30",
    "optimizer.lr=fast",
    "optimizer.lr=",
    "optimizer.betas=[1.0, 0.999]",
    "optimizer.betas=[0.9]",
    "optimizer.weight_decay=-0.1",
    "model.dropout=1.5",
    "model.hidden_sizes=[128, 0]",
    "model.hidden_sizes=64",
    "data.batch_size=0",
    "data.batch_size=1.5",
    "data.batch_size='64'",
    "data.num_workers=-1",
    "data.num_classes=1",
    "data.val_split=0.95",
    "data.val_split=0.85",
    "trainer.max_epochs=1:30",
    "trainer.max_epochs=0",
    "trainer.seed=-5",
    "trainer.precision=8-bit",
    "trainer.precision=16",
    "trainer.gradient_clip_val=-1",
    "trainer.gradient_clip_algorithm=l2",
    "trainer.early_stopping.mode=max",
    "trainer.deterministic=1",
]


@pytest.mark.parametrize("assignment", SAME_AS_SPEC)
def test_project_refuses_what_the_spec_loader_refuses(
    projects, assignment, tmp_path, monkeypatch, capsys
):
    with pytest.raises(SpecError):
        load_spec_text("name: tabular-classifier\n", "spec.yaml", [assignment])
    (tmp_path / "empty.yaml").write_text("")
    monkeypatch.chdir(tmp_path)
    train = projects["default", "pytorch"]
    lines = run_main(train, ["--config", "empty.yaml", "--set", assignment], monkeypatch, capsys)
    assert lines[0].startswith(f"error: --set {assignment.partition('=')[0]}: "), lines
    assert len(lines) == 2 and lines[1].startswith("hint: "), lines
