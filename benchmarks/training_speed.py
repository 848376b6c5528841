"""Training-loop timings: generated projects against bare loops, measured in one process.

Four loops train the same network (the generated project's build_model) on the same
DataLoader (its make_loader), on CPU with one thread:

- bare:            zero_grad / forward / backward / step, written by hand;
- plain:           the generated plain project's TrainingLoop (progress bar, logging,
                   checkpoints and all);
- lightning:       the generated Lightning project's Trainer, LightningModule and DataModule;
- lightning_bare:  a minimal LightningModule (training_step returns the loss) under
                   Trainer(barebones=True);
- generated_bare:  the generated LightningModule and DataModule under the same
                   Trainer(barebones=True): against lightning_bare, what the generated code
                   adds to Lightning;
- same_trainer:    the minimal LightningModule under the generated project's own Trainer:
                   against lightning_bare, what Lightning's full Trainer (callbacks, loggers,
                   progress bar) costs.

Per-step time is one epoch's training time divided by its steps, taken from timestamps at
the start of each batch (first to last), so set-up and validation are not in it. Per-epoch
time (plain vs lightning) is a whole epoch: training, validation, logging, checkpoint.
Runs are interleaved round by round; each ratio is taken within a round (both figures from
the same minutes) and the median over rounds is reported, so a slow stretch of a busy
machine moves both sides of a ratio. Times are CPU seconds of this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BATCH_SIZE = 64
# CPU time of this process, not wall time: on a shared machine, time spent waiting for a
# core is not the loop's cost and would land on whichever loop happened to be running.
# With one thread and no DataLoader workers every measured instruction runs here.
clock = time.process_time


def bench_spec(name: str, num_samples: int):
    """The default spec (an MLP classifier on synthetic data) with more samples."""
    from torch_scaffold.spec.schema import Spec

    spec = Spec()
    data = dataclasses.replace(spec.data, num_samples=num_samples, batch_size=BATCH_SIZE)
    return dataclasses.replace(spec, name=name, data=data)


def generate(spec, style: str, root: Path) -> tuple[Path, str]:
    """Write the project for `spec` under root; returns (folder, package name)."""
    from torch_scaffold.generate import build_context, render_project

    folder = root / style
    for rel, text in render_project(spec, style).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder, build_context(spec, style)["package_name"]


def import_project(folder: Path, package: str, *modules: str) -> list[Any]:
    sys.path.insert(0, str(folder))
    return [importlib.import_module(f"{package}.{name}") for name in modules]


class Stamps:
    """Timestamps of batch starts; per-step time is the mean interval within one epoch."""

    def __init__(self) -> None:
        self.epochs: list[list[float]] = []

    def new_epoch(self) -> None:
        self.epochs.append([])

    def stamp(self) -> None:
        self.epochs[-1].append(clock())

    def per_step(self) -> list[float]:
        return [(e[-1] - e[0]) / (len(e) - 1) for e in self.epochs if len(e) > 2]


class StampedLoader:
    """A DataLoader stand-in that stamps each batch as the loop receives it."""

    def __init__(self, loader, stamps: Stamps) -> None:
        self.loader, self.stamps = loader, stamps
        self.sampler = loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        self.stamps.new_epoch()
        for batch in self.loader:
            self.stamps.stamp()
            yield batch


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Progress bars and Lightning's messages go nowhere while timing."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


class PlainRunner:
    """The generated plain project, built as its train.run() builds it."""

    def __init__(self, folder: Path, package: str, output_dir: Path) -> None:
        import torch

        config_mod, data, model_mod, metrics, optim, engine, logging_utils = import_project(
            folder,
            package,
            "cli",  # the command line: parse_args, and load_config from config.py
            "data",
            "model",
            "metrics",
            "optim",
            "engine",
            "logging_utils",
        )
        args = config_mod.parse_args(["--accelerator", "cpu", "--output-dir", str(output_dir)])
        config = config_mod.load_config(args)
        torch.manual_seed(config.trainer.seed)
        self.splits = data.load_splits(config)
        self.make_loader = lambda shuffle: data.make_loader(
            self.splits.train, config, shuffle=shuffle, pin_memory=False
        )
        self.build_model = lambda: model_mod.build_model(
            config.model, self.splits.input_shape, self.splits.num_outputs
        )
        self.build_loss = metrics.build_loss
        self.config = config
        self.train_stamps, self.bare_stamps, self.no_tensorboard_stamps = (
            Stamps(),
            Stamps(),
            Stamps(),
        )
        model = self.build_model()
        val_loader = data.make_loader(self.splits.val, config, shuffle=False, pin_memory=False)
        self.val_loader = val_loader
        columns = ["train_loss_step", "lr", "train_loss_epoch"]
        columns += [f"val_{name}" for name in ("loss", *metrics.METRICS)]
        logger = logging_utils.MetricLogger(
            output_dir / "logs", columns, config.logging.csv, config.logging.tensorboard
        )
        self.loop = engine.TrainingLoop(
            model,
            metrics.build_loss(config),
            optim.build_optimizer(model, config),
            None,  # no learning-rate schedule
            config,
            torch.device("cpu"),
            StampedLoader(self.make_loader(True), self.train_stamps),
            val_loader,
            logger,
            output_dir / "checkpoints",
        )
        self.bare_model = self.build_model()
        self.bare_optimizer = optim.build_optimizer(self.bare_model, config)
        self.bare_criterion = metrics.build_loss(config)
        self.bare_loader = StampedLoader(self.make_loader(True), self.bare_stamps)
        self.epoch_seconds: list[float] = []

    def plain_epoch(self) -> None:
        """One whole epoch of the generated loop: train, validate, log, checkpoint."""
        start = clock()
        self._fit_one_epoch()
        self.epoch_seconds.append(clock() - start)

    def plain_epoch_without_tensorboard(self) -> None:
        """The same loop with its TensorBoard writer detached, timed separately: against
        plain_epoch, what TensorBoard's event writer costs at the logging interval."""
        loader, logger = self.loop.train_loader, self.loop.logger
        writer = logger._tensorboard  # the generated MetricLogger's writer; None: not written
        loader.stamps, logger._tensorboard = self.no_tensorboard_stamps, None
        try:
            self._fit_one_epoch()
        finally:
            loader.stamps, logger._tensorboard = self.train_stamps, writer

    def _fit_one_epoch(self) -> None:
        self.loop.config.trainer.max_epochs = self.loop.epoch + 1
        with quiet():
            self.loop.fit()

    def bare_epoch(self) -> None:
        """The hand-written loop: zero_grad / forward / backward / step, nothing else."""
        model, optimizer, criterion = self.bare_model, self.bare_optimizer, self.bare_criterion
        model.train()
        for inputs, targets in self.bare_loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), targets)
            loss.backward()
            optimizer.step()


def without_logging(module_class: type) -> type:
    """A LightningModule class whose self.log and self.log_dict do nothing:
    Trainer(barebones=True), Lightning's mode for timing its own loop, forbids logging."""

    class Unlogged(module_class):
        def log(self, *args: Any, **kwargs: Any) -> None:
            return None

        def log_dict(self, *args: Any, **kwargs: Any) -> None:
            return None

    return Unlogged


class LightningRunner:
    """The generated Lightning project, and a minimal LightningModule under barebones."""

    def __init__(self, folder: Path, package: str, output_dir: Path, plain: PlainRunner) -> None:
        import pytorch_lightning as pl

        config_mod, datamodule_mod, module_mod, optim, train = import_project(
            folder, package, "cli", "datamodule", "module", "optim", "train"
        )
        self.pl, self.output_dir, self.plain = pl, output_dir, plain
        self.config_mod, self.datamodule_mod = config_mod, datamodule_mod
        self.module_mod, self.optim, self.train = module_mod, optim, train
        self.train_stamps, self.bare_stamps = Stamps(), Stamps()
        self.same_trainer_stamps, self.generated_bare_stamps = Stamps(), Stamps()
        self.control_stamps = Stamps()
        self.epoch_seconds: list[float] = []

    def _config(self, output_dir: Path, epochs: int):
        """The generated project's config, on CPU, for `epochs` epochs without early stopping."""
        args = self.config_mod.parse_args(["--accelerator", "cpu", "--output-dir", str(output_dir)])
        config = self.config_mod.load_config(args)
        config.trainer.max_epochs = epochs
        config.trainer.early_stopping.patience = 10**6  # time every epoch, never stop early
        return config

    def _timer(self, stamps: Stamps, epoch_seconds: list[float] | None):
        pl = self.pl

        class Timer(pl.Callback):
            def on_train_epoch_start(self, trainer, module):
                stamps.new_epoch()
                now = clock()
                if epoch_seconds is not None and hasattr(self, "last"):
                    epoch_seconds.append(now - self.last)  # the previous whole epoch
                self.last = now

            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                stamps.stamp()

        return Timer()

    def _generated_module(self, config, barebones: bool = False):
        """The generated LitModel and DataModule, built as the project's run() builds them
        (barebones: with logging off, which Trainer(barebones=True) forbids)."""
        self.pl.seed_everything(config.trainer.seed, verbose=False)
        datamodule = self.datamodule_mod.DataModule(config)
        datamodule.setup("fit")
        splits = datamodule.splits
        module_class = self.module_mod.LitModel
        if barebones:
            module_class = without_logging(module_class)
        model = module_class(config.to_dict(), splits.input_shape, splits.num_outputs)
        return model, datamodule

    def generated_fit(self, epochs: int) -> None:
        """The generated project's own Trainer, callbacks and loggers, as its run() builds them."""
        config = self._config(self.output_dir, epochs)
        model, datamodule = self._generated_module(config)
        with quiet():
            trainer = self.train.build_trainer(config, self.train.Run(Path(config.output_dir)))
            trainer.callbacks.append(self._timer(self.train_stamps, self.epoch_seconds))
            trainer.fit(model, datamodule=datamodule)

    def generated_barebones_fit(self, epochs: int) -> None:
        """The generated LightningModule and DataModule under Trainer(barebones=True)."""
        config = self._config(self.output_dir, epochs)
        model, datamodule = self._generated_module(config, barebones=True)
        trainer = self._barebones_trainer(self.generated_bare_stamps, epochs)
        with quiet():
            trainer.fit(model, datamodule=datamodule)

    def _barebones_trainer(self, stamps: Stamps, epochs: int):
        return self.pl.Trainer(
            barebones=True,
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            callbacks=[self._timer(stamps, None)],
        )

    def barebones_fit(self, epochs: int, control: bool = False) -> None:
        """A minimal LightningModule (same network, loss, optimizer and loader), barebones.
        control: the same fit again, timed separately: the ratio of the two is the noise."""
        stamps = self.control_stamps if control else self.bare_stamps
        trainer = self._barebones_trainer(stamps, epochs)
        self._fit_minimal(trainer, validate=False)  # barebones forbids self.log

    def same_trainer_fit(self, epochs: int) -> None:
        """The minimal LightningModule under the generated project's own Trainer: the same
        callbacks, loggers and progress bar. Against generated_fit this isolates what the
        generated LightningModule and DataModule add; against barebones_fit, what Lightning's
        full Trainer costs."""
        config = self._config(self.output_dir / "same-trainer", epochs)
        with quiet():
            trainer = self.train.build_trainer(config, self.train.Run(Path(config.output_dir)))
        trainer.callbacks.append(self._timer(self.same_trainer_stamps, None))
        self._fit_minimal(trainer, validate=True)

    def _fit_minimal(self, trainer, validate: bool) -> None:
        pl, plain = self.pl, self.plain
        config = plain.config

        class Minimal(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.model = plain.build_model()
                self.criterion = plain.build_loss(config)

            def training_step(self, batch, batch_idx):
                inputs, targets = batch
                return self.criterion(self.model(inputs), targets)

            def configure_optimizers(self):
                return plain_optimizer(self.model, config)

            def validation_step(self, batch, batch_idx):  # the generated Trainer validates
                inputs, targets = batch
                self.log("val_loss", self.criterion(self.model(inputs), targets))

        plain_optimizer = self.optim.build_optimizer
        with quiet():
            trainer.fit(
                Minimal(),
                train_dataloaders=plain.make_loader(True),
                val_dataloaders=plain.val_loader if validate else None,
            )


def measure(root: Path, num_samples: int, rounds: int, epochs: int) -> dict[str, float]:
    """Every training figure, interleaved over `rounds` rounds; medians of per-epoch values."""
    import torch

    torch.set_num_threads(1)
    plain_folder, plain_package = generate(bench_spec("bench-plain", num_samples), "pytorch", root)
    lit_folder, lit_package = generate(
        bench_spec("bench-lightning", num_samples), "lightning", root
    )
    plain = PlainRunner(plain_folder, plain_package, root / "plain-out")
    lightning = LightningRunner(lit_folder, lit_package, root / "lightning-out", plain)
    plain.bare_epoch()  # warm-up: first-touch allocations, lazy imports
    plain.plain_epoch()
    series = {
        "bare_step": plain.bare_stamps.per_step,
        "plain_step": plain.train_stamps.per_step,
        "plain_no_tensorboard_step": plain.no_tensorboard_stamps.per_step,
        "lightning_step": lightning.train_stamps.per_step,
        "lightning_bare_step": lightning.bare_stamps.per_step,
        "lightning_same_trainer_step": lightning.same_trainer_stamps.per_step,
        "lightning_generated_bare_step": lightning.generated_bare_stamps.per_step,
        "lightning_control_step": lightning.control_stamps.per_step,
        "plain_epoch": lambda: plain.epoch_seconds,
        "lightning_epoch": lambda: lightning.epoch_seconds,
    }
    per_round = []  # each round's median of every series: ratios are taken within a round
    for round_index in range(rounds):
        start = {name: len(values()) for name, values in series.items()}
        loops = [plain.bare_epoch, plain.plain_epoch, plain.plain_epoch_without_tensorboard]
        for epoch in range(epochs):
            # rotate which loop goes first, so none always runs in another's wake
            turn = (round_index + epoch) % len(loops)
            for run_epoch in loops[turn:] + loops[:turn]:
                run_epoch()
        lightning.generated_fit(epochs + 1)  # the first epoch's interval needs a second start
        lightning.barebones_fit(epochs)
        lightning.generated_barebones_fit(epochs)
        lightning.same_trainer_fit(epochs)
        lightning.barebones_fit(epochs, control=True)
        per_round.append(
            {name: statistics.median(values()[start[name] :]) for name, values in series.items()}
        )
    figures = {name: statistics.median(r[name] for r in per_round) for name in series}
    figures["steps_per_epoch"] = len(plain.bare_loader)
    figures["rounds"] = per_round
    return figures


def paired_ratio(figures: dict, numerator: str, denominator: str) -> float:
    """The median over rounds of numerator / denominator, each ratio within one round.

    Both figures of a ratio come from the same minutes of the same process, so a slow
    stretch of a busy machine moves both; a ratio of overall medians would not pair them.
    """
    return statistics.median(r[numerator] / r[denominator] for r in figures["rounds"])
