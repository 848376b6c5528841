"""docs/spec.md, generated from the schema: every field's path, type, default, range, meaning.

Regenerate with `python -m torch_scaffold.spec.docs docs/spec.md`; a test fails when the
committed file differs from what this module produces.
"""

from __future__ import annotations

import inspect
import sys

from torch_scaffold.errors import SpecError
from torch_scaffold.spec.derived import (
    DEFAULT_INPUT_SHAPE,
    MODEL_KINDS,
    TASK_ALIASES,
    TASK_DEFAULTS,
)
from torch_scaffold.spec.example import allowed_text, yaml_value
from torch_scaffold.spec.examples import EXAMPLE_SPECS
from torch_scaffold.spec.introspect import FieldInfo, fields_of
from torch_scaffold.spec.load import load_spec_text
from torch_scaffold.spec.rules import RULES
from torch_scaffold.spec.schema import Spec
from torch_scaffold.spec.source import MAX_SPEC_BYTES

EXAMPLE = """\
name: digits-cnn
description: A small CNN on 28x28 grey images.
task: classification
model:
  type: cnn
  channels: [16, 32]
  dropout: 0.2
data:
  source: synthetic
  input_shape: [1, 28, 28]
  num_classes: 10
  batch_size: 128
optimizer:
  name: adamw
  lr: 3.0e-4
scheduler:
  name: cosine
trainer:
  max_epochs: 20
  precision: bf16-mixed
  early_stopping:
    monitor: val_accuracy
    mode: max
"""

INTRO = f"""\
# Model specification reference

<!-- Generated from src/torch_scaffold/spec/schema.py by
     `python -m torch_scaffold.spec.docs docs/spec.md`. Do not edit by hand:
     a test fails when this file and the schema disagree. -->

A spec is one YAML file that describes a training project: the task, the model, the data,
the optimizer and scheduler, the loss and metrics, the trainer and logging.
`scaffold new --style pytorch|lightning SPEC.yaml` turns it into a project;
`scaffold spec example` prints the default spec with a comment on every field;
`scaffold spec schema` prints its JSON Schema for editors.

Only `name` is required. Every other field has a default, so a spec lists only what
differs from the defaults. Without a spec, `scaffold new` uses the default spec: an MLP
classifier on synthetic data.

## Example

```yaml
{EXAMPLE}```

## Checking a spec

`scaffold spec check SPEC.yaml... [--set KEY=VALUE ...]` loads each spec exactly as
`scaffold new` does. Each problem gets one line that names the file, line and field, and
one line with a fix; any problem means exit code 2, and `scaffold new` writes nothing:

```
{{sample_error}}
```

- Unknown fields get a "did you mean"; wrong types, out-of-range values, unknown choices
  and the cross-field conflicts below are reported before anything is generated.
- Every problem in a file is reported in one run, in file order. A cross-field rule that
  reads a field with its own error is skipped (no follow-on errors against the default
  that stands in for it), and so is a rule that reads a field of an earlier conflict.
  Problems that leave nothing to check stop at once: YAML syntax, a top level that is not
  a mapping, refused tags, anchors, duplicate keys, binary or non-UTF-8 files, and a
  `--set` that is not KEY=VALUE, names no field or is not valid YAML.
- `--set KEY=VALUE` overrides a field by its dotted path, e.g.
  `--set optimizer.lr=3e-4 --set model.hidden_sizes=[256,128]`. The value is read as YAML
  and checked like a value in the file; errors name `--set KEY`.
  Setting a section (`--set trainer.early_stopping={{enabled: false}}`) replaces it whole.
- Numbers such as `3e-4` are read as numbers (PyYAML would read them as text).
  `precision: 32` is read as the choice `"32"`. The YAML 1.1 number forms that change a
  value silently are refused: a leading zero (`batch_size: 010` would be octal 8) and
  colons (`max_epochs: 1:30` would be base-60 90); quote them if text is meant.
- The loader is safe by construction: files over {MAX_SPEC_BYTES:,} bytes, binary or
  non-UTF-8 files, YAML anchors and aliases, tags such as `!!python/object`, merge keys
  and duplicate keys are all refused with a message.
"""


def markdown_reference() -> str:
    out = [INTRO.replace("{sample_error}", _sample_error()), "## Fields\n"]
    out.append(
        "Types: `list of X` is a YAML list such as `[64, 32]`; `or null` means the field\n"
        "may be `null` (or left out), and its value is then derived as described.\n"
    )
    _section_tables(Spec, "", "Top level", out)
    out.append(_derived())
    out.append(_examples())
    out.append("## Cross-field rules\n")
    out.append("Each field can be valid on its own and still conflict with another:\n")
    for rule in RULES:
        out.append(f"- {inspect.cleandoc(rule.__doc__ or '').replace(chr(10), ' ')}")
    return "\n".join(out) + "\n"


def _sample_error() -> str:
    """The real message for the example above with a negative learning rate."""
    try:
        load_spec_text(EXAMPLE.replace("lr: 3.0e-4", "lr: -0.1"), "spec.yaml")
    except SpecError as err:
        return err.render()
    raise AssertionError("the sample error in docs/spec.md no longer fails")


def _section_tables(cls: type, prefix: str, title: str, out: list[str]) -> None:
    out.append(f"### {title}\n")
    out.append("| Field | Type | Default | Allowed | Meaning |")
    out.append("|---|---|---|---|---|")
    sections = []
    for info in fields_of(cls):
        path = prefix + info.name
        if info.kind == "section":
            out.append(f"| `{path}` | section | | | {_cell(info.doc)} See below. |")
            sections.append((info, path))
            continue
        default = yaml_value(info.default)
        required = " **Required.**" if info.required else ""
        allowed = allowed_text(info).replace("; may be null", "")
        out.append(
            f"| `{path}` | {_type(info)} | `{default}` | {_cell(allowed)} |"
            f" {_cell(info.doc)}{required} |"
        )
    out.append("")
    for info, path in sections:
        _section_tables(info.section, path + ".", f"`{path}`: {info.doc.rstrip('.')}", out)


def _type(info: FieldInfo) -> str:
    names = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}
    if info.kind == "map":
        return "mapping of names to values"
    text = f"list of {names[info.item]}s" if info.kind == "list" else names[info.kind]
    return text + " or null" if info.optional else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _derived() -> str:
    shapes = ", ".join(f"{model}: {list(s)}" for model, s in DEFAULT_INPUT_SHAPE.items())
    aliases = ", ".join(f"`{alias}` is `{kind}`" for alias, kind in TASK_ALIASES.items())
    rows = [
        "| task | loss (`auto`) | metrics (`null`) | allowed metrics | models |",
        "|---|---|---|---|---|",
    ]
    for kind, (loss, metrics, allowed) in TASK_DEFAULTS.items():
        models = [m for m, kinds in MODEL_KINDS.items() if kind in kinds]
        rows.append(
            f"| `{kind}` | {loss} | {', '.join(metrics)} | {', '.join(allowed)} |"
            f" {', '.join(models)} |"
        )
    return (
        "### Defaults that depend on other fields\n\n"
        f"Each task picks its loss, its metrics and the model's output head ({aliases}):\n\n"
        + "\n".join(rows)
        + "\n\n"
        "Model heads: binary has 1 logit, multiclass and sequence_classification one logit\n"
        "per class, multilabel one per label (`data.num_classes`), regression\n"
        "`data.num_targets` values, language_modelling one logit per vocabulary token at every\n"
        "position, reconstruction the input's shape (an encoder/decoder MLP). Metrics come from\n"
        "torchmetrics: accuracy is the fraction right (micro); f1, precision, recall and auroc\n"
        "are macro averages over classes or labels; perplexity is exp(mean token cross-entropy).\n\n"
        f"- `data.input_shape: null` (synthetic data): {shapes}; token tasks\n"
        "  (sequence_classification, language_modelling) read `data.seq_len` token ids from a\n"
        "  vocabulary of `data.vocab_size`.\n"
        "- `model.causal: null`: true for language_modelling, false otherwise.\n"
        "- `scheduler.max_lr: null`: 10 x `optimizer.lr`.\n"
        "- `data.features: null`: every column except `data.target` (csv), the array `x` (npz).\n"
    )


def _examples() -> str:
    rows = [
        "### Example specs\n",
        "`examples/specs/` holds a complete spec per task and model family; each is generated,",
        "trained and checked for style parity in the tests:\n",
        "| spec | model | task | what it shows |",
        "|---|---|---|---|",
    ]
    for name, model, task, shows in EXAMPLE_SPECS:
        rows.append(f"| `{name}` | {model} | {task} | {_cell(shows)} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = markdown_reference()
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
