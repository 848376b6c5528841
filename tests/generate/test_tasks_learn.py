"""Each task's example learns its synthetic data: clearly better than chance in a few epochs.

The projects train in this process (plain style, CPU, one thread; parity tests show the
Lightning style computes the same numbers). Scores are the held-out test metrics.
"""

from __future__ import annotations

import math

import pytest

from torch_scaffold.generate import build_context, render_project

from .helpers import REPO, load_example, project_module, write_files

SPECS = REPO / "examples" / "specs"


def _train(stem: str, tmp_path):
    spec = load_example(SPECS / f"{stem}.yaml")
    package = build_context(spec, "pytorch")["package_name"]
    folder = write_files(render_project(spec, "pytorch"), tmp_path / stem)
    argv = ["--accelerator", "cpu", "--output-dir", str(folder / "outputs")]
    with project_module(folder, package) as train:
        metrics = train.main(argv)
        config = train.cli.load_config(train.cli.parse_args(argv))
        splits = train.load_splits(config)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    return spec, metrics, splits


# (example, task) -> what "clearly better than chance" means for it
CASES = {
    ("binary_mlp", "binary"): lambda m, s: m["test_accuracy"] > 0.8 and m["test_auroc"] > 0.9,
    ("custom_model", "multiclass"): lambda m, s: m["test_accuracy"] > 2 / s.data.num_classes,
    ("resnet_images", "multiclass"): lambda m, s: m["test_accuracy"] > 2 / s.data.num_classes,
    ("multilabel_mlp", "multilabel"): lambda m, s: m["test_accuracy"] > 0.8 and m["test_f1"] > 0.7,
    ("transformer_sequence_regression", "regression"): lambda m, s: m["test_r2"] > 0.5,
    ("rnn_sequence_classification", "sequence_classification"): (
        lambda m, s: m["test_accuracy"] > 2 / s.data.num_classes
    ),
    ("transformer_lm", "language_modelling"): (
        lambda m, s: m["test_perplexity"] < s.data.vocab_size / 4 and m["test_accuracy"] > 0.5
    ),
    ("rnn_lm", "language_modelling"): lambda m, s: m["test_perplexity"] < s.data.vocab_size / 4,
}


@pytest.mark.slow
@pytest.mark.parametrize("stem, task", sorted(CASES), ids=[stem for stem, _ in sorted(CASES)])
def test_example_learns_its_task(stem, task, tmp_path, torch_one_thread):
    spec, metrics, _ = _train(stem, tmp_path)
    assert spec.task == task
    assert CASES[(stem, task)](metrics, spec), metrics


@pytest.mark.slow
def test_autoencoder_reconstructs_well_below_the_data_variance(tmp_path, torch_one_thread):
    import torch

    spec, metrics, splits = _train("autoencoder_reconstruction", tmp_path)
    assert spec.task == "reconstruction"
    inputs = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    variance = float(inputs.var(dim=0).mean())  # the MSE of always predicting the mean
    assert metrics["test_mse"] < 0.3 * variance, (metrics, variance)


def test_every_task_has_a_learning_example():
    from torch_scaffold.spec.derived import TASK_DEFAULTS, task_kind

    covered = {task_kind(task) for _, task in CASES} | {"reconstruction"}
    assert covered == set(TASK_DEFAULTS)


SYNTHETIC = {
    "binary-features": ({"task": "binary"}, (20,), (1,)),
    "multilabel-images": (
        {"task": "multilabel", "model.type": "cnn", "data.num_classes": 4},
        (1, 16, 16),
        (4,),
    ),
    "regression-sequences": (
        {"task": "regression", "model.type": "rnn", "data.num_targets": 2},
        (16, 8),
        (2,),
    ),
    "reconstruction": ({"task": "reconstruction", "data.input_shape": (3, 4)}, (3, 4), (3, 4)),
    "sequence-classes": (
        {"task": "sequence_classification", "model.type": "transformer", "data.seq_len": 7},
        (7,),
        (),
    ),
    "next-tokens": (
        {"task": "language_modelling", "model.type": "rnn", "data.seq_len": 9},
        (9,),
        (9,),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_synthetic_data_is_seeded_shaped_and_leaves_the_global_rng_alone(case, tmp_path):
    import torch

    from .helpers import spec_with

    changes, input_shape, target_shape = SYNTHETIC[case]
    spec = spec_with(**{"data.num_samples": 64, **changes})
    folder = write_files(render_project(spec, "pytorch", format_code=False), tmp_path / case)
    with project_module(folder, "tabular_classifier", "synthetic") as synthetic:
        config = synthetic.DataConfig()
        before = torch.get_rng_state()
        first = synthetic.make_synthetic(config, torch.Generator().manual_seed(3))
        again = synthetic.make_synthetic(config, torch.Generator().manual_seed(3))
        other = synthetic.make_synthetic(config, torch.Generator().manual_seed(4))
        assert torch.equal(torch.get_rng_state(), before)  # never the global RNG
    inputs, targets, outputs = first
    assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
    assert not torch.equal(inputs, other[0])
    assert tuple(inputs.shape) == (64, *input_shape)
    assert tuple(targets.shape) == (64, *target_shape)
    assert outputs == build_context(spec, "pytorch")["num_outputs"]
    if spec.task in ("sequence_classification", "language_modelling"):
        assert inputs.dtype == targets.dtype == torch.long
        assert int(inputs.max()) < spec.data.vocab_size
    if spec.task == "language_modelling":
        assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the next tokens
    if spec.task in ("binary", "multilabel"):
        assert set(targets.unique().tolist()) == {0.0, 1.0}
