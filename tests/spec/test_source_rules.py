"""Cross-field rules for data sources, optimizers and schedules: each error names both fields."""

import pytest

from torch_scaffold.errors import SpecError
from torch_scaffold.spec import load_spec_text


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_spec_text("name: d\n" + text, "s.yaml")
    return caught.value


CASES = {
    "text needs a sequence model": (
        "model:\n  type: mlp\ndata:\n  source: text\n  path: t.txt\n",
        "s.yaml:5: data.source",
        ["model.type (line 3)", "mlp"],
    ),
    "image folder gives class labels": (
        "task: regression\ndata:\n  source: image_folder\n  path: imgs\n",
        "s.yaml:2: task",
        ["data.source (line 4)", "image_folder"],
    ),
    "image channels are grey or rgb": (
        "model:\n  type: cnn\ndata:\n  source: image_folder\n  path: i\n  input_shape: [2, 8, 8]\n",
        "s.yaml:7: data.input_shape",
        ["data.source (line 5)", "grey (1) or RGB (3)"],
    ),
    "one mean per channel": (
        "data:\n  source: image_folder\n  path: i\n  image_mean: [0.1, 0.2]\n",
        "s.yaml:5: data.image_mean",
        ["data.input_shape (default)", "3 channels"],
    ),
    "npy needs a targets file": (
        "data:\n  source: npy\n  path: x.npy\n",
        "s.yaml:3: data.source",
        ["data.targets_path"],
    ),
    "plateau watches a logged value": (
        "task: regression\nscheduler:\n  name: plateau\n  monitor: val_accuracy\n",
        "s.yaml:5: scheduler.monitor",
        ["val_loss, val_mse, val_mae", "task regression"],
    ),
    "plateau needs a validation set": (
        (
            "data:\n  val_split: 0\nscheduler:\n  name: plateau\n"
            "trainer:\n  early_stopping:\n    enabled: false\n  checkpoint:\n    enabled: false\n"
        ),
        "s.yaml:3: data.val_split",
        ["scheduler.name (line 5)", "val_loss"],
    ),
    "warm-up shorter than training": (
        "scheduler:\n  name: warmup_cosine\n  warmup_steps: 100\ntrainer:\n  max_epochs: 3\n",
        "s.yaml:4: scheduler.warmup_steps",
        ["trainer.max_epochs (line 6) 3", "78 optimizer steps"],
    ),
    "nesterov is for sgd": (
        "optimizer:\n  name: adam\n  nesterov: true\n",
        "s.yaml:4: optimizer.nesterov",
        ["optimizer.name (line 3)", "adam"],
    ),
    "milestones increase": (
        "scheduler:\n  name: multistep\n  milestones: [5, 3]\n",
        "s.yaml:4: scheduler.milestones",
        ["does not increase"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_incompatible_options_name_both_fields(case):
    text, where, parts = CASES[case]
    err = error(text)
    assert err.where == where, err.render()
    for part in parts:
        assert part in err.message, err.render()
    assert err.hint


def test_compatible_sources_and_schedules_load():
    spec = load_spec_text(
        "name: d\nmodel:\n  type: mlp\ndata:\n  source: image_folder\n  path: imgs\n"
        "optimizer:\n  name: sgd\n  nesterov: true\n  decay_norm_and_bias: false\n"
        "scheduler:\n  name: plateau\n  monitor: val_accuracy\n  mode: max\n",
        "s.yaml",
    )
    assert spec.data.source == "image_folder" and spec.scheduler.monitor == "val_accuracy"
