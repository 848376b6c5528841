"""The generated LightningModule under Trainer(barebones=True), Lightning's mode for timing
its own loop: self.log is forbidden there, so the module trains without logging.

benchmarks/run.py times the generated module and DataModule under barebones against a
minimal module; this test keeps that comparison possible.
"""

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import project_module, write_files


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
        model = train.LitModel(config.to_dict(), splits.input_shape, splits.num_outputs, 10)
        before = [p.detach().clone() for p in model.parameters()]
        trainer = pl.Trainer(barebones=True, max_epochs=1, accelerator="cpu", devices=1)
        trainer.fit(model, datamodule=datamodule)  # validates too: nothing may call self.log
    assert trainer.global_step == -(-len(splits.train) // config.data.batch_size)
    assert not model.logging_enabled
    assert trainer.callback_metrics == {}
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(changed)
