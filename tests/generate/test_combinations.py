"""Pairwise combinations of spec options: every pair of option values appears in at least one
generated project, and each project is black/ruff clean and trains with --fast-dev-run in both
styles (in this process, each project under its own package name).

The option values come from the schema's own choices at test time, so new models, tasks,
sources, optimizers and schedulers join the set without editing this file. Pairs the spec
validator rejects in every completion (a text source with an mlp, say) are left out and
printed. The first FAST cases (which the greedy generator packs with the most pairs) run by
default; the whole set with `-m full`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from torch_scaffold.errors import SpecError
from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec import load_spec_text, schema
from torch_scaffold.spec.derived import DEFAULT_INPUT_SHAPE, task_kind

from .allpairs import all_pairs, pairs_of, pairwise
from .datafiles import csv_data, image_folder_data, npy_data, npz_data, text_data
from .helpers import expect_clear_error, project_module

FAST = 7  # 4a+4b: more models and tasks, so more pairs to reach 30% of them
STYLES = ("pytorch", "lightning")
RUFF = os.path.join(os.path.dirname(sys.executable), "ruff")
# Not trained here: torchvision needs its package and downloaded data (tests never download);
# tests/generate/test_sources.py covers it with a stand-in. 16-mixed needs a CUDA GPU.
UNTRAINABLE = {"data.source": {"torchvision"}, "trainer.precision": {"16-mixed"}}


SECTIONS = {
    "": schema.Spec,
    "model": schema.ModelSpec,
    "data": schema.DataSpec,
    "optimizer": schema.OptimizerSpec,
    "scheduler": schema.SchedulerSpec,
    "trainer": schema.TrainerSpec,
}


def _choices(path: str) -> list[str]:
    """The schema's allowed values for `path`, less those that cannot train here."""
    section, _, name = path.rpartition(".")
    choices = SECTIONS[section].__dataclass_fields__[name].metadata["choices"]
    return [value for value in choices if value not in UNTRAINABLE.get(path, ())]


# factor -> {value: spec overrides}; the first value of each is the most common setting
FACTORS: dict[str, dict[str, dict]] = {
    **{
        path: {value: {path: value} for value in _choices(path)}
        for path in (
            "model.type",
            "task",
            "data.source",
            "optimizer.name",
            "scheduler.name",
            "trainer.precision",
        )
    },
    "clipping": {
        "off": {},
        "norm": {"trainer.gradient_clip_val": 1.0},
        "value": {"trainer.gradient_clip_val": 0.5, "trainer.gradient_clip_algorithm": "value"},
    },
    "accumulate": {"1": {}, "2": {"trainer.accumulate_grad_batches": 2}},
    "loggers": {
        "csv+tensorboard": {},
        "csv": {"logging.tensorboard": False},
        "none": {"logging.csv": False, "logging.tensorboard": False},
        "wandb": {"logging.wandb": True, "logging.tensorboard": False},
        "mlflow": {"logging.mlflow": True, "logging.csv": False},
    },
    "weight decay": {
        "all": {"optimizer.weight_decay": 0.01},
        "not norms/biases": {
            "optimizer.weight_decay": 0.01,
            "optimizer.decay_norm_and_bias": False,
        },
    },
    "early stopping": {"on": {}, "off": {"trainer.early_stopping.enabled": False}},
}
FACTOR_VALUES = {name: list(values) for name, values in FACTORS.items()}
DATA_WRITERS = {"npz": npz_data, "npy": npy_data}
# the target kinds the data files are written for (other tasks read class-index files)
FILE_TARGET_KINDS = ("classification", "regression", "binary", "multilabel")


def _data_overrides(source: str, task: str, model: str, folder: Path) -> dict:
    """Where each source's files are (written by `data_root`); pure, so validation can use it."""
    kind = task_kind(task)
    kind = kind if kind in FILE_TARGET_KINDS else "classification"
    if source == "csv":
        return csv_data(folder / kind, task=kind, write=False)
    if source in DATA_WRITERS:  # models that read images get 1x8x8 arrays, sequences 8x8
        rank = len(DEFAULT_INPUT_SHAPE.get(model, ()))
        return DATA_WRITERS[source](
            folder / kind, task=kind, write=False, images=rank == 3, sequences=rank == 2
        )
    if source == "image_folder":
        images = str(folder / "images")
        return {"data.source": source, "data.path": images, "data.input_shape": (3, 8, 8)}
    if source == "text":
        return {"data.source": source, "data.path": str(folder / "input.txt")}
    return {"data.num_samples": 256}


def spec_tree(case: dict, folder: Path, name: str = "combo") -> dict:
    """The YAML tree of one case: its option values plus small, fast settings."""
    changes: dict = {
        "name": name,
        "data.batch_size": 16,
        "trainer.max_epochs": 2,
        "scheduler.warmup_steps": 2,
        "scheduler.milestones": (1,),
    }
    for factor, value in case.items():
        changes.update(FACTORS[factor][value])
    source = case.get("data.source", "synthetic")
    task, model = case.get("task", "classification"), case.get("model.type", "mlp")
    changes.update(_data_overrides(source, task, model, folder))
    tree: dict = {}
    for dotted, value in changes.items():
        *sections, leaf = dotted.split(".")
        node = tree
        for part in sections:
            node = node.setdefault(part, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return tree


def load_case(case: dict, folder: Path, name: str = "combo") -> schema.Spec:
    return load_spec_text(yaml.safe_dump(spec_tree(case, folder, name)), f"{name}.yaml")


def _is_valid(case: dict) -> bool:
    try:
        load_case(case, Path("/data"))
    except SpecError:
        return False
    return True


CASES, INFEASIBLE = pairwise(FACTOR_VALUES, _is_valid)


def _case_id(index: int, case: dict) -> str:
    short = [case[f] for f in ("model.type", "task", "data.source", "optimizer.name")]
    return f"{index:02d}-" + "-".join(short + [case["scheduler.name"]])


PARAMS = [
    pytest.param(
        index,
        case,
        id=_case_id(index, case),
        marks=[pytest.mark.slow] + ([pytest.mark.full] if index >= FAST else []),
    )
    for index, case in enumerate(CASES)
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Every data file a case can point at, written once."""
    root = tmp_path_factory.mktemp("combination-data")
    for kind in FILE_TARGET_KINDS:
        (root / kind).mkdir()
        csv_data(root / kind, task=kind)
        for writer in DATA_WRITERS.values():
            writer(root / kind, task=kind)
            writer(root / kind, task=kind, images=True)
            writer(root / kind, task=kind, sequences=True)
    image_folder_data(root, per_class=20)
    text_data(root)
    return root


def test_every_feasible_pair_is_covered():
    covered = set().union(*(pairs_of(case, list(FACTORS)) for case in CASES))
    every = set(all_pairs(FACTOR_VALUES))
    assert covered | set(INFEASIBLE) == every
    assert all(_is_valid(case) and set(case) == set(FACTORS) for case in CASES)
    fast = set().union(*(pairs_of(case, list(FACTORS)) for case in CASES[:FAST]))
    # the greedy cases come most-pairs-first, so the default subset already covers a lot
    print(
        f"\n{len(CASES)} cases cover {len(covered)} of {len(every)} pairs "
        f"({len(INFEASIBLE)} rejected by the spec rules); the first {FAST} cover {len(fast)}"
    )
    assert len(fast) >= 0.3 * len(covered)
    # a value that appears in no valid case at all is worth knowing about
    for factor, values in FACTOR_VALUES.items():
        for value in values:
            if not any(case[factor] == value for case in CASES):
                print(f"  never valid here: {factor} = {value}")


def _lint(folder: Path) -> None:
    import black

    mode = black.Mode(line_length=100)
    for path in sorted(folder.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert black.format_str(text, mode=mode) == text, f"black would reformat {path}"
    ruff = subprocess.run(
        [RUFF, "check", "-q", "."], cwd=folder, capture_output=True, text=True, check=False
    )
    assert ruff.returncode == 0, f"{folder}\n{ruff.stdout}"


def _tracker_missing(case: dict) -> str | None:
    tracker = case["loggers"]
    if tracker in ("wandb", "mlflow") and importlib.util.find_spec(tracker) is None:
        return tracker
    return None


@pytest.mark.parametrize("index, case", PARAMS)
def test_combination_lints_and_trains_in_both_styles(
    index, case, data_root, tmp_path, capsys, torch_one_thread
):
    name = f"combo-{index:02d}"  # a package name of its own: combo_NN
    spec = load_case(case, data_root, name)
    metrics = {}
    for style in STYLES:
        files = render_project(spec, style)
        folder = tmp_path / style
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text, encoding="utf-8")
        _lint(folder)
        package = build_context(spec, style)["package_name"]
        argv = ["--fast-dev-run", "--accelerator", "cpu", "--output-dir", str(folder / "out")]
        missing = _tracker_missing(case)
        with project_module(folder, package) as train:
            if missing:  # not installed here: the run stops with the one-line message
                expect_clear_error(
                    train,
                    argv,
                    capsys,
                    f"logging.{missing}: is true, but the {missing} package is not installed",
                    hint=f"pip install -e .[{missing}], or set logging.{missing}: false",
                )
                continue
            metrics[style] = train.main(argv)
        assert metrics[style] and all(math.isfinite(v) for v in metrics[style].values())
        assert not (folder / "out").exists(), "--fast-dev-run writes nothing"
    if len(metrics) == 2:  # one batch each: the same test loss in both styles
        assert metrics["pytorch"].get("test_loss") == pytest.approx(
            metrics["lightning"].get("test_loss"), abs=1e-5
        )
