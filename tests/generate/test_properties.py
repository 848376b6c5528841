"""Property tests over the generator: specs drawn from the schema itself.

- Any valid spec (tests/spec/spec_strategies.py), with hostile text in every free-form string
  (quotes, backslashes, `{{ }}`/`{% %}`, unicode line separators, Python keywords), renders in
  both styles to files that are valid Python (compile), stable under black, clean under ruff,
  valid TOML and YAML, and that say exactly what the spec said. Spec text is never rendered as
  a template, and never chooses a path.
- Any invalid value makes `scaffold new` exit 2 with one error line (a mapping: one per bad
  key), and write nothing.
- On a small sample (slow), drawn specs keep style parity: the same losses step for step.
"""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import black
import pytest
import tomllib
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torch_scaffold.cli import main
from torch_scaffold.generate import build_context, render_project
from torch_scaffold.generate.formatting import LINE_LENGTH
from torch_scaffold.generate.write import _safe_relative
from torch_scaffold.spec import load_spec_text
from torch_scaffold.spec.names import RUN_FOLDERS, SHADOWED, dependency_clash

from .helpers import train_losses, write_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spec"))
from spec_strategies import dump, flow, invalid_cases, valid_specs

RUFF = os.path.join(os.path.dirname(sys.executable), "ruff")
STYLES = ("pytorch", "lightning")
# Pieces that break naive templating or quoting in one of the four file types.
HOSTILE = [
    "{{ cookiecutter.package_name }}",
    "../",
    "/etc/",
    "~/",
    "C:\\",
    "{% raw %}",
    "{%- endraw %}",
    "{# c #}",
    "{{",
    "}}",
    '"',
    "'",
    '"""',
    "'''",
    "\\",
    "\\n",
    "\\u00e9",
    "${HOME}",
    "`x`",
    "<b>",
    "[[x]]",
    "# not a comment",
    "key: value",
    "- item",
    "!!python/object:os.system",
    "&anchor *alias",
    "import os",
    "class",
    "None",
    "lambda",
    "__import__('os')",
    "é",
    "模型",
    "✓",
    "\u2028",
    "\u0085",
    "\u00a0",
    "🚀",
    " ",
]


def _hostile_text(multiline: bool, max_size: int):
    pieces = st.sampled_from(HOSTILE + (["\n", "\r\n"] if multiline else [])) | st.text(
        "abcXYZ09 _-.", min_size=1, max_size=4
    )
    return (
        st.lists(pieces, min_size=1, max_size=8)
        .map("".join)
        .map(lambda text: "a" + text[: max_size - 2] + "z")  # letters at both ends: a valid name
    )


@st.composite
def hostile_specs(draw) -> dict:
    """valid_specs() with hostile text in name, description and the data path/keys."""
    data = draw(valid_specs())
    data["name"] = draw(_hostile_text(False, 100))
    if dependency_clash(data["name"]) is not None:  # a dependency's name is refused
        data["name"] = ("x" + data["name"])[-100:]
    data["description"] = draw(_hostile_text(True, 2000))
    if data["data"]["source"] != "synthetic":
        data["data"]["path"] = draw(_hostile_text(False, 200))
        data["data"]["target"] = draw(_hostile_text(False, 200))
        if data["data"]["features"] is not None:
            feature = draw(_hostile_text(False, 200))
            data["data"]["features"] = [feature] if feature != data["data"]["target"] else None
    return data


def _assignments(source: str, scope: str | None = None) -> dict:
    """NAME = <literal> at module level, or `name: type = <literal>` in class `scope` (also
    `setting(<literal>, ...)`, a config field with its limits)."""
    tree = ast.parse(source)
    body = tree.body
    if scope is not None:
        (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == scope]
        body = cls.body
    values = {}
    for node in body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "setting":
                value = value.args[0]  # setting(default, **limits)
            elif isinstance(value, ast.Call) and value.keywords:  # field(default_factory=lambda: X)
                factory = {k.arg: k.value for k in value.keywords}.get("default_factory")
                if not isinstance(factory, ast.Lambda):
                    continue
                value = factory.body
            try:
                values[node.target.id] = ast.literal_eval(value)
            except ValueError:  # a default that is not a literal
                pass
    return values


def _parser_description(cli_source: str) -> str:
    """cli.py's DESCRIPTION = <literal>, the argparse description."""
    for node in ast.parse(cli_source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DESCRIPTION":
            return ast.literal_eval(node.value)
    raise AssertionError("no argparse description")


def _md_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _check_project(spec, style: str, files: dict[str, str]) -> None:
    context = build_context(spec, style)
    package = context["package_name"]
    assert package.isidentifier() and package.isascii()
    assert package not in SHADOWED and package not in RUN_FOLDERS
    assert not package[0].isdigit()
    mode = black.Mode(line_length=LINE_LENGTH)
    for path, text in files.items():
        _safe_relative(path)  # never '..', absolute, or odd: spec text never picks a path
        top = path.split("/")[0]
        assert top in (package, "tests", "scripts", ".github") or "/" not in path, path
        if path.endswith(".py"):
            compile(text, path, "exec")
            assert black.format_str(text, mode=mode) == text, path
    # Python: the exact strings
    init = _assignments(files[f"{package}/__init__.py"])
    assert init["PROJECT_NAME"] == spec.name
    assert init["DESCRIPTION"] == spec.description
    config_py = files[f"{package}/config.py"]
    shown = _parser_description(files[f"{package}/cli.py"])
    if "%(prog)" in shown:  # argparse %-formats such a text: every % is doubled
        shown = shown.replace("%%", "%")
    assert shown == _one_line(spec.description)
    data_defaults = _assignments(config_py, "DataConfig")
    if spec.data.source != "synthetic":
        assert data_defaults["path"] == spec.data.path
    if spec.data.source in ("csv", "npz"):  # the sources that name columns or arrays
        assert data_defaults["target"] == spec.data.target
        assert data_defaults["features"] == (
            list(spec.data.features) if spec.data.features else None
        )
    if spec.data.source == "npy":
        assert data_defaults["targets_path"] == spec.data.targets_path
    # TOML
    pyproject = tomllib.loads(files["pyproject.toml"])["project"]
    assert pyproject["description"] == _one_line(spec.description)  # a summary is one line
    assert pyproject["name"] == context["project_slug"]
    # YAML: the config file holds the spec's values
    config = yaml.safe_load(files["config.yaml"])
    if spec.data.source != "synthetic":
        assert config["data"]["path"] == spec.data.path
    if spec.data.source in ("csv", "npz"):
        assert config["data"]["target"] == spec.data.target
    assert config["optimizer"]["lr"] == spec.optimizer.lr
    if spec.trainer.checkpoint.enabled and "checkpoint" in config["trainer"]:
        assert config["trainer"]["checkpoint"]["monitor"] == spec.trainer.checkpoint.monitor
    # Markdown: one heading line and one description line, shown literally
    readme = files["README.md"].splitlines()
    assert _md_unescape(readme[0].removeprefix("# ")) == _one_line(spec.name)
    assert _md_unescape(readme[2]) == _one_line(spec.description)
    assert not re.search(r"(?<!\\)[<>`*_\[\]]", readme[0] + readme[2]), "unescaped markup"


def _ruff(folder: Path) -> None:
    result = subprocess.run(
        [RUFF, "check", "-q", "--no-cache", "."],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _valid_spec_renders_valid_exact_files(tmp_path_factory, data):
    spec = load_spec_text(dump(data), "drawn.yaml")
    root = tmp_path_factory.mktemp("drawn")
    for style in STYLES:
        files = render_project(spec, style)
        _check_project(spec, style, files)
        write_files(files, root / style)
    for style in STYLES:  # each project is linted with its own pyproject settings
        _ruff(root / style)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_longest_package_name_keeps_every_line_within_the_limit(tmp_path, strategy):
    """Docstrings and hints that name the package stay ruff-clean at its longest (40 chars)."""
    spec = load_spec_text(
        f"name: {'a' + 'b' * 98 + 'z'}\ntrainer: {{strategy: {strategy}}}\n", "long.yaml"
    )
    for style in STYLES:
        files = render_project(spec, style)
        assert len(build_context(spec, style)["package_name"]) == 40
        write_files(files, tmp_path / style)
        _ruff(tmp_path / style)


PROPERTY = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


# One example in the fast tier (it renders and lints both styles: several seconds); the slow
# tier draws 30.
@settings(max_examples=1, **PROPERTY)
@given(hostile_specs())
def test_any_valid_spec_renders_valid_exact_files(tmp_path_factory, data):
    _valid_spec_renders_valid_exact_files(tmp_path_factory, data)


@pytest.mark.slow
@settings(max_examples=30, **PROPERTY)
@given(hostile_specs())
def test_any_valid_spec_renders_valid_exact_files_more(tmp_path_factory, data):
    _valid_spec_renders_valid_exact_files(tmp_path_factory, data)


@settings(max_examples=40, deadline=None)
@given(invalid_cases())
def test_any_invalid_value_makes_new_exit_2_and_write_nothing(tmp_path_factory, case):
    path, value, _ = case
    root = tmp_path_factory.mktemp("invalid")
    target = root / "out"
    result = CliRunner().invoke(
        main, ["new", "--style", "lightning", "-o", str(target), "--set", f"{path}={flow(value)}"]
    )
    assert result.exit_code == 2, (result.output, path, value)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    # one error; a mapping with several bad keys (model.args) gets one per key
    assert errors and all(line.startswith(f"error: --set {path}") for line in errors), lines
    assert len(lines) <= 2 * len(errors) and (len(errors) == 1 or isinstance(value, dict))
    assert list(root.iterdir()) == []


# --- parity on a sample -------------------------------------------------------------------


def _trainable_on_cpu(data: dict) -> dict:
    """Keep the drawn choices, but small enough to train here in seconds."""
    model, d, trainer = data["model"], data["data"], data["trainer"]
    model["hidden_sizes"] = [min(size, 48) for size in model["hidden_sizes"]][:3]
    model["channels"] = [min(size, 8) for size in model["channels"]][:2]
    model["type"] = model["type"] if len(model["channels"]) else "mlp"
    # Every size the schema admits is capped: one drawn recurrent layer of 65536 units, or a
    # vocabulary of a million, needs tens of GB (this OOM-killed CI once).
    model["hidden_size"] = min(model["hidden_size"], 32)
    model["num_layers"] = min(model["num_layers"], 2)
    model["num_heads"] = min(model["num_heads"], 4)
    model["embedding_dim"] = model["num_heads"] * min(
        max(model["embedding_dim"] // model["num_heads"], 1), 8
    )
    model["ff_size"] = min(model["ff_size"], 64)
    model["blocks_per_stage"] = min(model["blocks_per_stage"], 1)
    model["kernel_size"] = min(model["kernel_size"], 3)
    d["vocab_size"] = min(d["vocab_size"], 50)
    d["seq_len"] = min(d["seq_len"], 16)
    d.update(source="synthetic", path=None, features=None, num_workers=0)
    d["num_samples"] = min(d["num_samples"], 320)
    d["batch_size"] = max(min(d["batch_size"], 32), 8)
    d["num_classes"] = min(d["num_classes"], 10)
    d["num_targets"] = min(d["num_targets"], 8)
    if model["type"] == "cnn":
        d["input_shape"] = [1, 8, 8]
    elif d["input_shape"] is not None:
        d["input_shape"] = [min(size, 16) for size in d["input_shape"]]
    d["val_split"] = min(d["val_split"], 0.3)
    # One process, as the plain style without torchrun: a drawn num_nodes would wait for nodes
    # that never come, and Lightning's ddp strategy re-seeds after set-up even on one device.
    trainer.update(
        accelerator="cpu",
        devices=1,
        num_nodes=1,
        strategy="auto",
        activation_checkpointing=False,
        compile=False,
        max_epochs=3,
    )
    trainer["accumulate_grad_batches"] = min(trainer["accumulate_grad_batches"], 3)
    # Parity of finite training: a drawn lr near 10 makes SGD overflow to inf/NaN within a
    # few steps, and the styles' early stopping then reacts to non-finite values differently
    # (left for the NaN-stop work of the reliability issue).
    data["optimizer"]["lr"] = min(data["optimizer"]["lr"], 1.0)
    # and a cosine schedule's floor stays below the capped lr, as valid_specs() drew it
    data["scheduler"]["eta_min"] = min(data["scheduler"]["eta_min"], data["optimizer"]["lr"] / 2)
    # a one-cycle schedule needs a warm-up step within these few steps
    data["scheduler"]["pct_start"] = max(data["scheduler"]["pct_start"], 0.3)
    if trainer["precision"] == "16-mixed":
        trainer["precision"] = "32"
    data["logging"] = {"csv": False, "tensorboard": False}
    return data


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_specs().map(_trainable_on_cpu))
def test_drawn_specs_keep_style_parity(tmp_path_factory, torch_one_thread, data):
    spec = load_spec_text(dump(data), "drawn.yaml")
    train = spec.data.num_samples - int(spec.data.num_samples * spec.data.val_split)
    train -= int(spec.data.num_samples * spec.data.test_split)
    per_epoch = math.ceil(train / spec.data.batch_size)
    steps = per_epoch + 3  # past the first validation, into the second epoch
    package = build_context(spec, "pytorch")["package_name"]
    root = tmp_path_factory.mktemp("parity")
    traces = {}
    for style in STYLES:
        project = write_files(render_project(spec, style), root / style)
        argv = ["--output-dir", str(root / style / "outputs")]
        traces[style] = train_losses(project, package, argv, steps)
    assert len(traces["pytorch"]) == len(traces["lightning"]) == steps
    worst = max(abs(a - b) for a, b in zip(traces["pytorch"], traces["lightning"]))
    assert worst <= 1e-6, (worst, data)
