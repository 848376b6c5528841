"""Style parity: the same spec and seed give the same per-step training losses in both styles.

Both projects are generated, then trained in this process (CPU, one thread) with
Tensor.backward wrapped to record every loss, as ../shared/tools/losstrace.py does.
"""

import dataclasses
import math
from contextlib import nullcontext

import pytest

from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec.schema import Spec

from .helpers import EXAMPLE_SPECS, load_example, train_losses, write_files

TOLERANCE = 1e-6
MIN_STEPS = 50
SPECS = [pytest.param(Spec(), id="default")] + [
    pytest.param(load_example(path), id=path.stem) for path in EXAMPLE_SPECS
]


def _batches_per_epoch(spec) -> int:
    total = spec.data.num_samples
    train = total - int(total * spec.data.val_split) - int(total * spec.data.test_split)
    return math.ceil(train / spec.data.batch_size)


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_plain_and_lightning_losses_match(spec, tmp_path, torch_one_thread):
    per_epoch = _batches_per_epoch(spec)
    steps = max(MIN_STEPS + 10, per_epoch + 10)  # always past the first validation
    epochs = math.ceil(steps / per_epoch)
    package = build_context(spec, "pytorch")["package_name"]
    traces = {}
    for style in ("pytorch", "lightning"):
        project = write_files(render_project(spec, style), tmp_path / style)
        argv = ["--max-epochs", str(epochs), "--accelerator", "cpu"]
        argv += ["--output-dir", str(tmp_path / style / "outputs")]
        traces[style] = train_losses(project, package, argv, steps)
    plain, lightning = traces["pytorch"], traces["lightning"]
    assert len(plain) == len(lightning) == steps
    assert steps > per_epoch, "the window must span at least two epochs"
    worst = max(abs(a - b) for a, b in zip(plain, lightning))
    print(
        f"parity {package}: {steps} steps over {epochs} epochs "
        f"({per_epoch} batches/epoch), max abs diff {worst:.3g}"
    )
    assert worst <= TOLERANCE, (plain[:5], lightning[:5])
    assert all(math.isfinite(loss) for loss in plain)


@pytest.mark.slow
def test_a_different_seed_gives_different_losses(tmp_path, torch_one_thread):
    """The comparison above can fail: changing only the seed moves the losses."""
    project = write_files(render_project(Spec(), "pytorch"), tmp_path / "p")
    runs = [
        train_losses(
            project,
            "tabular_classifier",
            ["--seed", seed, "--output-dir", str(tmp_path / seed)],
            20,
        )
        for seed in ("1", "2")
    ]
    assert max(abs(a - b) for a, b in zip(*runs)) > 1e-3


RNN_EXAMPLE = next(path for path in EXAMPLE_SPECS if path.stem == "rnn_sequence_classification")


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["mlp", "lstm", "gru"])
def test_bf16_autocast_keeps_parity(tmp_path, torch_one_thread, cell):
    """Mixed precision on CPU: both styles autocast the same ops to bfloat16. Recurrent
    layers run in float32 there (oneDNN's CPU bf16 LSTM raises; its bf16 GRU broke parity)."""
    if cell == "mlp":
        spec = Spec()
    else:
        spec = load_example(RNN_EXAMPLE)
        spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, cell=cell))
    package = build_context(spec, "pytorch")["package_name"]
    traces = []
    for style in ("pytorch", "lightning"):
        project = write_files(render_project(spec, style), tmp_path / style)
        argv = ["--max-epochs", "3", "--precision", "bf16-mixed", "--accelerator", "cpu"]
        argv += ["--output-dir", str(tmp_path / style / "outputs")]
        traces.append(train_losses(project, package, argv, MIN_STEPS + 10))
    assert len(traces[0]) == len(traces[1]) == MIN_STEPS + 10
    assert max(abs(a - b) for a, b in zip(*traces)) <= TOLERANCE


@pytest.mark.slow
def test_fp16_on_cpu_trains_in_bf16_in_both_styles(tmp_path, torch_one_thread):
    """Lightning turns 16-mixed into bf16-mixed on CPU (no fp16 autocast there); the plain
    loop does the same, with a warning, so a config written for GPUs keeps parity on CPU."""
    traces = {}
    for style, precision in [
        ("lightning", "16-mixed"),
        ("pytorch", "16-mixed"),
        ("pytorch", "bf16-mixed"),
    ]:
        project = write_files(render_project(Spec(), style), tmp_path / style)
        argv = ["--max-epochs", "1", "--precision", precision, "--accelerator", "cpu"]
        argv += ["--output-dir", str(tmp_path / style / precision)]
        with (
            pytest.warns(UserWarning, match="16-mixed")
            if precision == "16-mixed"
            else nullcontext()
        ):
            traces[style, precision] = train_losses(project, "tabular_classifier", argv, 20)
    assert traces["pytorch", "16-mixed"] == traces["pytorch", "bf16-mixed"]
    assert traces["pytorch", "16-mixed"] == traces["lightning", "16-mixed"]
