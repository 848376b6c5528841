"""A run whose loss becomes NaN or inf stops with one clear error and exit code 3, in both
styles, before that epoch's checkpoints are written.

The losses come from a custom model that turns its output NaN (or inf) after a given number of
training steps, or only when evaluating, so each case diverges at a known step. The checks run
at the logging interval (the plain loop's existing read-back of the loss) and once per epoch,
never on every step.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec import load_spec_text

from .helpers import project_module, write_files

STYLES = ("pytorch", "lightning")
BREAKING_MODEL = '''
import torch
from torch import nn


class Breaking(nn.Module):
    """A linear regression whose output becomes `value` after `after` training steps (or,
    with `eval_only`, in evaluation only), without reading anything back from the device."""

    def __init__(self, after: int = 0, value: str = "nan", eval_only: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.after, self.value, self.eval_only = after, float(value), eval_only

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.linear(inputs)
        if self.eval_only:
            return outputs if self.training else outputs * self.value
        if self.training:
            self.steps += 1
        # a constant factor (1 or the value): no NaN flows back before the step it breaks at
        return outputs * torch.where(self.steps > self.after, self.value, 1.0)
'''
HINT = (
    "hint: lower optimizer.lr, set trainer.gradient_clip_val, or check the data for nan or inf"
    " values; the checkpoints of earlier epochs are kept"
)
# name -> (model.args, extra argv, the error line); 1024 examples, 80% train, batch 32: 26 steps
CASES = {
    "nan at the logging interval": (
        {"after": 7},
        ["--set", "trainer.log_every_n_steps=5"],
        "error: training diverged: the train loss is nan at epoch 0, step 10",
    ),
    "inf at the logging interval": (
        {"after": 3, "value": "inf"},
        ["--set", "trainer.log_every_n_steps=2"],
        "error: training diverged: the train loss is inf at epoch 0, step 4",
    ),
    "nan between intervals: the epoch mean": (
        {"after": 7},
        ["--set", "trainer.log_every_n_steps=1000"],
        "error: training diverged: the mean train loss is nan at epoch 0, step 26",
    ),
    "nan in the second epoch": (
        {"after": 30},
        ["--set", "trainer.log_every_n_steps=1000"],
        "error: training diverged: the mean train loss is nan at epoch 1, step 52",
    ),
    "nan in validation only": (
        {"eval_only": True},
        [],
        "error: training diverged: the validation loss is nan at epoch 0, step 26",
    ),
}


def _project(root: Path, style: str, args: dict) -> Path:
    (root / "breaking.py").write_text(BREAKING_MODEL)
    spec_text = textwrap.dedent(f"""\
        name: breaking
        task: regression
        model:
          type: custom
          source: breaking.py:Breaking
          args: {args!r}
        data:
          input_shape: [8]
          num_samples: 1024
          batch_size: 32
        trainer:
          max_epochs: 3
          early_stopping:
            enabled: false
        logging:
          csv: false
          tensorboard: false
        """).replace("'", '"')
    (root / "spec.yaml").write_text(spec_text)
    spec = load_spec_text(spec_text, str(root / "spec.yaml"))
    return write_files(render_project(spec, style, format_code=False), root / style)


@pytest.mark.slow  # trains until the loss turns non-finite
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES)
def test_non_finite_loss_stops_the_run(case, style, tmp_path, capsys, torch_one_thread):
    args, argv, error = CASES[case]
    folder = _project(tmp_path, style, args)
    with project_module(folder, "breaking") as train, pytest.raises(SystemExit) as exit_:
        train.main(["--accelerator", "cpu", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 3, err
    assert "Traceback" not in err
    lines = [line for line in re.split(r"[\r\n]", err) if line.startswith(("error: ", "hint: "))]
    assert lines == [error, HINT]
    # nothing of the diverged epoch was saved: last.ckpt, if any, holds the epoch before
    import torch

    (run,) = (folder / "outputs").iterdir()  # the run's folder is kept, with its status
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"
    last = run / "checkpoints" / "last.ckpt"
    epoch = int(error.split("at epoch ")[1].split(",")[0])
    if epoch == 0:
        assert not last.exists()
    else:
        state = torch.load(last, map_location="cpu", weights_only=True)
        assert state["epoch"] == epoch - (1 if style == "lightning" else 0)
        weights = state["model"] if style == "pytorch" else state["state_dict"]
        assert all(
            torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()
        )
