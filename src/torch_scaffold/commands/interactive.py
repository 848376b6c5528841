"""`scaffold new -i`: ask the few key choices, each validated as it is answered, and return a
spec's YAML text. The questions build the spec step by step; after each answer the spec so far
goes through the same loader as a file, so an answer that does not fit is asked again."""

from __future__ import annotations

import sys

import click
import yaml

from torch_scaffold.errors import OutputError, SpecError

FILE_SOURCES_ASKED = ("csv", "npz", "npy", "image_folder", "text")


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def ask_spec(style: str | None) -> tuple[dict, str]:
    """(spec as a dict, style) from the user's answers; data paths as typed (from the cwd)."""
    from torch_scaffold.spec import load_spec_text
    from torch_scaffold.spec.schema import MODELS, SOURCES, TASKS

    if not has_terminal():
        raise OutputError(
            "-i asks questions, and there is no terminal to ask them on",
            hint="write a spec instead: scaffold spec example > spec.yaml, then"
            " scaffold new spec.yaml --style pytorch|lightning",
        )
    spec: dict = {}

    def answer(path: str, value) -> None:
        section, _, key = path.rpartition(".")
        (spec.setdefault(section, {}) if section else spec)[key] = value

    def ask(path: str, text: str, default, choices=None, check=None, kind=None) -> None:
        while True:
            kind = click.Choice(choices) if choices else kind
            value = click.prompt(text, default=default, type=kind, show_choices=bool(choices))
            previous = yaml.safe_load(yaml.safe_dump(spec))
            answer(path, value)
            try:
                load_spec_text(to_yaml(spec), "<your answers>")
            except SpecError as err:
                if check is None or check(err):
                    click.echo(err.render(), err=True)
                    spec.clear()
                    spec.update(previous)
                    continue
            return

    ask("name", "Project name", "my-model")
    # a task the default model cannot do is fine here: the model is the next question
    model_next = lambda err: "model.type" not in f"{err} {err.hint}"
    ask("task", "Task", "classification", list(TASKS), check=model_next)
    ask("model.type", "Model type", "mlp", [m for m in MODELS if m != "custom"])
    sources = [s for s in SOURCES if s != "torchvision"]
    # a file source's path is the next question, not a reason to ask for the source again
    later = lambda err: "data.path" not in str(err) and "targets_path" not in str(err)
    ask("data.source", "Data source", "synthetic", sources, check=later)
    if spec["data"]["source"] in FILE_SOURCES_ASKED:
        # the path's own problems are reported now; a missing targets_path is asked next
        existing = click.Path(exists=True)  # asked again until it names something that exists
        no_targets_yet = lambda err: "targets_path" not in str(err)
        ask("data.path", "Path to the data", None, check=no_targets_yet, kind=existing)
        if spec["data"]["source"] == "npy":
            ask("data.targets_path", "Path to the targets (.npy)", None, kind=existing)
    if style is None:
        style = click.prompt(
            "Style", default="lightning", type=click.Choice(["pytorch", "lightning"])
        )
    return spec, style


def to_yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
