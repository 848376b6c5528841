"""The generated LightningModule under Trainer(barebones=True), Lightning's mode for timing
its own loop. Barebones forbids self.log, so benchmarks/training_speed.py turns the module's
logging off (without_logging) rather than the generated code checking for barebones.

benchmarks/run.py times the generated module and DataModule under barebones against a
minimal module; this test keeps that comparison possible.
"""

import importlib.util
from pathlib import Path

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import project_module, write_files

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "training_speed.py"


def _training_speed():
    spec = importlib.util.spec_from_file_location("training_speed", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_generated_module_trains_under_a_barebones_trainer(tmp_path, torch_one_thread):
    import pytorch_lightning as pl

    torch = torch_one_thread
    project = write_files(render_project(Spec(), "lightning"), tmp_path / "project")
    with project_module(project, "tabular_classifier", "train") as train:
        config = train.cli.load_config(train.cli.parse_args(["--accelerator", "cpu"]))
        datamodule = train.DataModule(config)
        datamodule.setup("fit")
        splits = datamodule.splits
        unlogged = _training_speed().without_logging(train.LitModel)
        model = unlogged(config.to_dict(), splits.input_shape, splits.num_outputs)
        before = [p.detach().clone() for p in model.parameters()]
        trainer = pl.Trainer(barebones=True, max_epochs=1, accelerator="cpu", devices=1)
        trainer.fit(model, datamodule=datamodule)  # validates too: nothing may call self.log
    assert trainer.global_step == -(-len(splits.train) // config.data.batch_size)
    assert trainer.callback_metrics == {}
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(changed)
