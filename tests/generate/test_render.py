"""render_project: the generated files, without touching the disk."""

import ast
import json

import black
import pytest
import tomllib
import yaml

from torch_scaffold.generate import render_project
from torch_scaffold.generate.formatting import LINE_LENGTH
from torch_scaffold.generate.render import PREFORMATTED, templates_root
from torch_scaffold.spec.schema import Spec

from .helpers import spec_with

COMMON = {
    "README.md",
    ".gitignore",
    "config.yaml",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/test_smoke.py",
    "tests/test_resume.py",
    "tests/test_runs.py",
    "tests/test_inference.py",
    "tests/test_lifecycle.py",
    "scripts/slurm.sbatch",
    ".pre-commit-config.yaml",
    ".github/workflows/ci.yml",
}
SHARED = {
    "__init__.py",
    "__main__.py",
    "cli.py",
    "run_folder.py",
    "config.py",
    "config_checks.py",
    "checkpoint_files.py",
    "model.py",
    "data.py",
    "metrics.py",
    "optim.py",
    "rng.py",
    "runs.py",
    "synthetic.py",
    "arrays.py",
    "export.py",
}
PLAIN = {
    "train.py",
    "engine.py",
    "checkpoint.py",
    "logging_utils.py",
    "runtime.py",
    "distributed.py",
    "predict.py",  # through the plain loop, or Lightning's Trainer.predict
}
LIGHTNING = {"train.py", "module.py", "datamodule.py", "checkpoint.py", "predict.py"}


@pytest.fixture(scope="module")
def default_projects():
    return {style: render_project(Spec(), style) for style in ("pytorch", "lightning")}


@pytest.mark.parametrize("style, own", [("pytorch", PLAIN), ("lightning", LIGHTNING)])
def test_default_project_has_every_file(default_projects, style, own):
    files = default_projects[style]
    expected = COMMON | {f"tabular_classifier/{name}" for name in SHARED | own}
    assert set(files) == expected


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_python_files_compile_and_are_black_formatted(default_projects, style):
    mode = black.Mode(line_length=LINE_LENGTH)
    for path, text in default_projects[style].items():
        if path.endswith(".py"):
            compile(text, path, "exec")
            assert black.format_str(text, mode=mode) == text, path


def test_shared_model_and_data_code_is_identical_in_both_styles(default_projects):
    for name in SHARED:
        path = f"tabular_classifier/{name}"
        assert default_projects["pytorch"][path] == default_projects["lightning"][path], path


def test_lightning_uses_lightning_parts_and_plain_does_not(default_projects):
    lightning = "\n".join(default_projects["lightning"].values())
    plain = "\n".join(default_projects["pytorch"].values())
    for part in ("(ModelCheckpoint)", "EarlyStopping(", "CSVLogger(", "pl.Trainer(", "ckpt_path"):
        assert part in lightning, part
    assert "pytorch_lightning" not in plain and "lightning" not in _deps(
        default_projects["pytorch"]
    )
    assert "pytorch-lightning>=2.2,<2.7" in _deps(default_projects["lightning"])


def _deps(files):
    return " ".join(tomllib.loads(files["pyproject.toml"])["project"]["dependencies"])


def test_dependencies_admit_the_installed_torch(default_projects):
    from packaging.specifiers import SpecifierSet

    deps = tomllib.loads(default_projects["pytorch"]["pyproject.toml"])["project"]["dependencies"]
    torch_range = next(d for d in deps if d.startswith("torch"))[len("torch") :]
    assert "2.13.0" in SpecifierSet(torch_range)


def test_package_name_follows_the_spec_name():
    files = render_project(spec_with(name="My Fancy Model"), "pytorch", format_code=False)
    assert "my_fancy_model/train.py" in files
    assert "python -m my_fancy_model.train" in files["README.md"]


def test_config_yaml_holds_the_spec_values():
    spec = spec_with(**{"optimizer.lr": 1e-05, "trainer.max_epochs": 7, "data.batch_size": 16})
    config = yaml.safe_load(render_project(spec, "pytorch", format_code=False)["config.yaml"])
    assert config["optimizer"]["lr"] == 1e-05  # a float, not the string "1e-05"
    assert config["trainer"]["max_epochs"] == 7
    assert config["data"]["batch_size"] == 16


def test_switched_off_features_are_absent():
    spec = spec_with(
        **{
            "trainer.early_stopping.enabled": False,
            "logging.tensorboard": False,
            "scheduler.name": "none",
        }
    )
    for style in ("pytorch", "lightning"):
        files = render_project(spec, style, format_code=False)
        code = "\n".join(text for path, text in files.items() if path.endswith(".py"))
        assert "EarlyStopping" not in code and "early_stopping" not in files["config.yaml"]
        # the schedule is chosen at run time: none is a value, and nothing else is left on
        assert yaml.safe_load(files["config.yaml"])["scheduler"] == {"name": "none"}
        assert "SCHEDULER_INTERVAL" not in code and "= None  # no" not in code
    lightning = render_project(spec, "lightning", format_code=False)["tabular_classifier/train.py"]
    assert "TensorBoardLogger" not in lightning


def test_switched_on_features_are_present():
    spec = spec_with(**{"scheduler.name": "onecycle", "trainer.gradient_clip_val": 1.0})
    plain = render_project(spec, "pytorch")
    assert "OneCycleLR" in plain["tabular_classifier/optim.py"]
    assert yaml.safe_load(plain["config.yaml"])["scheduler"] == {
        "name": "onecycle",
        "max_lr": None,
        "pct_start": 0.3,
    }
    assert "clip_grad_norm_" in plain["tabular_classifier/engine.py"]
    assert yaml.safe_load(plain["config.yaml"])["trainer"]["gradient_clip_val"] == 1.0


def test_cnn_replaces_mlp():
    files = render_project(spec_with(**{"model.type": "cnn"}), "lightning", format_code=False)
    model = files["tabular_classifier/model.py"]
    assert "class CNN" in model and "class MLP" not in model
    assert "nn.BatchNorm2d" in model and "nn.MaxPool2d" in model


TRICKY = [
    "Quote \"double\" and 'single'",
    "Line one\nline two\\ with backslash",
    "Unicode: ÄÖÜ — 模型 ✓ \u2028sep",
    "Braces {{ cookiecutter.project_slug }} {% raw %} {# c #}",
    '""" triple """ and \'\'\'',
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_are_data_not_code(text):
    spec = spec_with(name="tricky " + text.splitlines()[0][:20], description=text)
    for style in ("pytorch", "lightning"):
        files = render_project(spec, style)
        package = next(path.split("/")[0] for path in files if path.endswith("/train.py"))
        init = files[f"{package}/__init__.py"]
        values = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(init).body
            if isinstance(node, ast.Assign)
        }
        assert values["DESCRIPTION"] == text
        summary = tomllib.loads(files["pyproject.toml"])["project"]["description"]
        assert summary == " ".join(text.split())  # one line: the README's, argparse's
        yaml.safe_load(files["config.yaml"])
        for path, source in files.items():
            if path.endswith(".py"):
                compile(source, path, "exec")


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_a_multi_line_description_gives_a_one_line_pyproject_summary(style):
    """setuptools warns that a summary with a newline "will break" the package's metadata."""
    text = "A classifier for sensor data.\n\nTrained nightly;\n  see docs/ for the data."
    files = render_project(spec_with(description=text), style, format_code=False)
    summary = tomllib.loads(files["pyproject.toml"])["project"]["description"]
    assert summary == "A classifier for sensor data. Trained nightly; see docs/ for the data."


def test_project_name_is_exact_in_python():
    name = 'Weird "name" \\ with\nnewline'
    files = render_project(spec_with(name=name), "pytorch")
    package = next(path.split("/")[0] for path in files if path.endswith("/train.py"))
    assert package.isidentifier()
    tree = ast.parse(files[f"{package}/__init__.py"])
    assert ast.literal_eval(tree.body[1].value) == name
    assert json.loads(json.dumps(name)) == name


@pytest.mark.parametrize("name", PREFORMATTED)
def test_preformatted_modules_are_plain_black_formatted_python(name):
    """render_project copies these as written (no black run): they hold no template syntax
    and are black-formatted already."""
    text = (templates_root() / "_shared" / name).read_text(encoding="utf-8")
    assert not any(mark in text for mark in ("{{", "{%", "{#"))
    assert black.format_str(text, mode=black.Mode(line_length=LINE_LENGTH)) == text
