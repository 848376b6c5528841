"""After fit, both styles test the weights of the best validation epoch (best.ckpt), not the
last epoch's: a run whose validation loss bottoms out early and then rises reports the test
metrics that `test --ckpt best` gives, which differ from the last weights'."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from torch_scaffold.generate import render_project

from .helpers import project_module, spec_with, write_files

STYLES = ("pytorch", "lightning")
PACKAGE = "bestweights"
EPOCHS = 8
# A small model on few examples at a high learning rate with early stopping off: the validation
# loss is lowest at an early epoch, and the last epoch's weights are worse.
SPEC = spec_with(
    **{
        "name": "bestweights",
        "model.hidden_sizes": (64,),
        "model.dropout": 0.0,
        "data.num_samples": 96,
        "data.batch_size": 8,
        "optimizer.lr": 0.05,
        "trainer.early_stopping.enabled": False,
    }
)


def _val_losses(run: Path) -> list[float]:
    with open(run / "logs" / "metrics.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(row["epoch"]): float(row["val_loss"]) for row in rows if row.get("val_loss")}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_fit_tests_the_best_epochs_weights(style, tmp_path, torch_one_thread):
    folder = write_files(render_project(SPEC, style), tmp_path / "project")
    outputs = tmp_path / "outputs"
    common = ["--accelerator", "cpu", "--output-dir", str(outputs)]
    with project_module(folder, PACKAGE, "cli") as cli:
        metrics = cli.main(["fit", *common, "--name", "run", "--max-epochs", str(EPOCHS)])
        losses = _val_losses(outputs / "run")
        assert len(losses) == EPOCHS
        best_epoch = losses.index(min(losses))
        assert best_epoch < EPOCHS - 1 and losses[-1] > min(losses), losses  # the premise

        best = torch.load(outputs / "run/checkpoints/best.ckpt", weights_only=False)
        assert best["epoch"] in (best_epoch, best_epoch + 1), (best["epoch"], losses)
        tested_best = cli.main(["test", "--run", "run", "--ckpt", "best", *common])
        tested_last = cli.main(["test", "--run", "run", "--ckpt", "last", *common])

    assert metrics["test_loss"] == pytest.approx(tested_best["test_loss"], abs=1e-6)
    assert metrics["test_accuracy"] == pytest.approx(tested_best["test_accuracy"], abs=1e-6)
    assert abs(metrics["test_loss"] - tested_last["test_loss"]) > 1e-4, (metrics, tested_last)
