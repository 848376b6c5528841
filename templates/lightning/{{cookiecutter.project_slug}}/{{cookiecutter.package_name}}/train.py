{% set p = cookiecutter | project %}
{# the package by name where the lines stay within 100 columns #}
{% set pkg = p.package_name if p.package_name|length <= 30 else "<package>" %}
"""Train, validate and test the model with Lightning's Trainer, in a run folder of its own.

    python -m {{ pkg }} fit [--name NAME] [--config FILE] [--resume last] ...
    python -m {{ pkg }}.train ...  # the same as fit
"""

from __future__ import annotations

import contextlib
import csv
{% if p.spec.logging.tensorboard %}
import importlib.util
{% endif %}
import logging
import os
import signal
import sys
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, {{ "EarlyStopping, " if p.early_stopping }}LearningRateMonitor, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger{{ ", MLFlowLogger" if "mlflow" in p.extra_loggers }}{{ ", TensorBoardLogger" if p.spec.logging.tensorboard }}{{ ", WandbLogger" if "wandb" in p.extra_loggers }}
{% if p.fsdp %}
from pytorch_lightning.strategies import {{ "FSDPStrategy, " if not p.checkpointing }}Strategy
{% endif %}
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from . import cli
{% if p.checkpointing %}
from .checkpoint import AtomicCheckpointIO, RunFolderCheckpoint, check_checkpoint{{ ", SealedFSDPStrategy, sharded_weights" if p.fsdp }}{{ ", trained_columns" if p.data_source == "csv" }}
{% endif %}
from .config import Config, ConfigError
from .data import Splits, load_splits
from .datamodule import DataModule
from .metrics import TrainingDiverged, check_finite_loss
{% if p.fsdp %}
from .model import BLOCKS
{% endif %}
from .module import LitModel
{% if p.checkpointing %}
from .optim import check_resumable
{% endif %}
{% if p.feature_scaler or p.class_weights %}
from .preprocess import {{ ["class_weights" if p.class_weights, "fit_preprocessing" if p.feature_scaler]|select|join(", ") }}
{% endif %}
from .run_folder import RUN_DIR_VARIABLE, Interrupted, Run, StopSignals, resolve_run{{ ", trim_metrics" if p.checkpointing }}
{% if p.data_source != "synthetic" %}
from .sources import save_labels
{% endif %}


def build_loggers(config: Config, folder: Run, resumed_step: int | None) -> list[Logger]:
    """The loggers, writing into the run's logs/ folder. CSVLogger starts metrics.csv afresh,
    so a resumed run first logs again the rows its checkpoint kept (trim_metrics)."""
    loggers: list[Logger] = []
    if config.logging.csv:
        kept = []
        if resumed_step is not None and (folder.logs / "metrics.csv").is_file():
            with open(folder.logs / "metrics.csv", newline="", encoding="utf-8") as handle:
                kept = list(csv.DictReader(handle))
        logger = CSVLogger(save_dir=str(folder.path), name="", version="logs")
        for row in kept:
            step = int(row.pop("step"))
            # epochs as they were written: 3, not 3.0
            values = {k: int(v) if v.isdigit() else float(v) for k, v in row.items() if v}
            logger.log_metrics(values, step)
        if kept:
            logger.save()  # on disk again now: the writer removed the file when it started
        loggers.append(logger)
{% if p.spec.logging.tensorboard %}
    if config.logging.tensorboard and importlib.util.find_spec("tensorboard") is not None:
        # purge_step: TensorBoard hides what the interrupted run logged after its checkpoint
        tensorboard = TensorBoardLogger(
            save_dir=str(folder.path),
            name="",
            version="logs",
            default_hp_metric=False,
            purge_step=resumed_step,
        )
        loggers.append(tensorboard)
{% endif %}
{% if "wandb" in p.extra_loggers %}
    if config.logging.wandb:  # offline unless WANDB_MODE says otherwise
        os.environ.setdefault("WANDB_MODE", "offline")
        os.makedirs(config.output_dir, exist_ok=True)
        loggers.append(WandbLogger(project={{ p.project_slug|pyrepr }}, save_dir=config.output_dir))
{% endif %}
{% if "mlflow" in p.extra_loggers %}
    if config.logging.mlflow:
        loggers.append(
            MLFlowLogger(
                experiment_name={{ p.project_slug|pyrepr }},
                run_name=folder.path.name,
                tracking_uri=config.logging.mlflow_tracking_uri,
            )
        )
{% endif %}
    return loggers


class StopOnDivergence(Callback):
    """Stops the run with TrainingDiverged when the loss is NaN or inf: the step loss at the
    logging interval, the epoch means before the epoch's checkpoints are saved."""

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *_: Any) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            loss = trainer.strategy.reduce(outputs["loss"].detach(), reduce_op="mean")
            check_finite_loss(loss, "train loss", trainer.current_epoch, trainer.global_step)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics, where = trainer.callback_metrics, (trainer.current_epoch, trainer.global_step)
        if "train_loss_epoch" in metrics:
            check_finite_loss(metrics["train_loss_epoch"], "mean train loss", *where)
        if "val_loss" in metrics:
            check_finite_loss(metrics["val_loss"], "validation loss", *where)


class ProgressBar(TQDMProgressBar):
    """Lightning's bar, closed when a run stops on an error or a signal, so that the error is
    the last line (an open bar would print itself again as the process exits)."""

    def on_exception(self, *args: Any) -> None:
        with contextlib.suppress(TypeError):  # TypeError: this run never opened that bar
            self.val_progress_bar.close()
        with contextlib.suppress(TypeError):
            self.train_progress_bar.close()


class StopOnSignal(Callback):
    """Ends the run before the next batch once SIGTERM or SIGINT has come: it keeps the
    checkpoint of its last whole epoch, which --resume continues."""

    def __init__(self, signals: StopSignals) -> None:
        self.signals = signals

    def on_train_batch_start(self, *args: Any) -> None:
        self.signals.check()

    def on_test_batch_start(self, *args: Any) -> None:
        self.signals.check()


def build_callbacks(config: Config, folder: Run, loggers: list[Logger]) -> list[Callback]:
    # The bar redraws at the logging interval: each redraw reads values back from the device.
    callbacks: list[Callback] = [
        ProgressBar(refresh_rate=config.trainer.log_every_n_steps),
        StopOnDivergence(),
    ]
{% if p.checkpointing %}
    checkpoint = config.trainer.checkpoint
    dirpath = str(folder.checkpoints)
{% if p.best_checkpoint %}
    callbacks.append(  # first: trainer.checkpoint_callback, whose best weights are tested
        RunFolderCheckpoint(
            dirpath=dirpath,
            filename="best",
            monitor=checkpoint.monitor,
            mode=checkpoint.mode,
            enable_version_counter=False,  # one best.ckpt, replaced when the metric improves
        )
    )
{% endif %}
    if checkpoint.save_last:
        # last.ckpt after every epoch (save_last=True saves it only when best.ckpt improves)
        last = RunFolderCheckpoint(dirpath=dirpath, filename="last", enable_version_counter=False)
        callbacks.append(last)
{% endif %}
{% if p.early_stopping %}
    stopping = config.trainer.early_stopping
    callbacks.append(
        EarlyStopping(
            monitor=stopping.monitor,
            mode=stopping.mode,
            patience=stopping.patience,
            min_delta=stopping.min_delta,
        )
    )
{% endif %}
    if loggers and config.scheduler.name != "none":
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    return callbacks


def silence_known_notices(resumed: bool = False) -> None:
    """The run prints its own progress and results: Lightning's notes (devices found, tips)
    are off at its logger, and of its warnings the advice to use loader workers (the data
    is in memory), its own use of a torch API that torch deprecates, and in a resumed run,
    that the run's folders are not empty."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)
    pytree = "pytorch_lightning.utilities._pytree"
    warnings.filterwarnings("ignore", category=FutureWarning, module=pytree)
    if resumed:
        for module in ("pytorch_lightning.callbacks.model_checkpoint", "lightning_fabric.loggers"):
            warnings.filterwarnings("ignore", category=UserWarning, module=module)


{% if p.fsdp %}
def build_strategy(config: Config) -> Strategy | str:
    """fsdp: Lightning's FSDPStrategy, sharding each block and saving sharded checkpoints."""
    trainer = config.trainer
    if trainer.strategy != "fsdp":
        return trainer.strategy
    if not torch.cuda.is_available():
        raise ConfigError(
            "trainer.strategy: fsdp needs GPUs in the Lightning style, and none is available;"
            " use strategy ddp here, or a project generated with --style pytorch, whose FSDP"
            " runs on CPU under torchrun"
        )
    blocks = set(BLOCKS) or None  # None: the model is sharded as one unit
    return {{ "SealedFSDPStrategy" if p.checkpointing else "FSDPStrategy" }}(
        auto_wrap_policy=blocks,
        activation_checkpointing_policy=blocks if trainer.activation_checkpointing else None,
        state_dict_type="sharded",
    )


{% endif %}
def build_trainer(
    config: Config,
    folder: Run,
    fast_dev_run: bool = False,
    resumed_step: int | None = None,
    signals: StopSignals | None = None,
) -> pl.Trainer:
    trainer = config.trainer
    # --fast-dev-run checks the wiring only: one batch per stage, nothing written.
    loggers = [] if fast_dev_run else build_loggers(config, folder, resumed_step)
    callbacks = build_callbacks(config, folder, loggers)
    if signals is not None:
        callbacks.append(StopOnSignal(signals))
    return pl.Trainer(
        max_epochs=trainer.max_epochs,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        num_nodes=trainer.num_nodes,  # Lightning detects SLURM and torchrun environments
        strategy={{ "build_strategy(config)" if p.fsdp else "trainer.strategy" }},
        precision=trainer.precision,
        gradient_clip_val=trainer.gradient_clip_val,
        gradient_clip_algorithm=trainer.gradient_clip_algorithm,
        accumulate_grad_batches=trainer.accumulate_grad_batches,
        log_every_n_steps=trainer.log_every_n_steps,
        deterministic=trainer.deterministic,
        benchmark=not trainer.deterministic,  # cuDNN autotuning (GPU only)
        callbacks=callbacks,
        logger=loggers or False,
{% if p.checkpointing %}
        # off when no checkpoint is kept: Lightning would add its own ModelCheckpoint
        enable_checkpointing=any(isinstance(c, RunFolderCheckpoint) for c in callbacks),
        plugins=[AtomicCheckpointIO()],  # checkpoints written to a temp file, then renamed
{% else %}
        enable_checkpointing=False,
{% endif %}
        default_root_dir=str(folder.path),
        fast_dev_run=fast_dev_run,
    )


def build_module(config: Config, splits: Splits) -> LitModel:
    """The LightningModule, sized for the data{{ " (its preprocessing fitted to the train split)" if p.feature_scaler }}."""
{% if p.class_weights %}
    weights = class_weights(config.data, splits.train, splits.num_outputs)  # None: unweighted
    weights = None if weights is None else weights.tolist()  # a checkpoint hyperparameter
{% endif %}
    model = LitModel(config.to_dict(), splits.input_shape, splits.num_outputs{{ ", splits.vocab_size" if p.input_kind == "tokens" }}{{ ", class_weights=weights" if p.class_weights }})
{% if p.feature_scaler %}
    fit_preprocessing(model.model, splits.train, config.data)
{% endif %}
    model.data_schema = splits.schema().to_dict()  # kept in every checkpoint, for predict
    return model


def run(
    config: Config,
    resume: str | None = None,
    fast_dev_run: bool = False,
    name: str | None = None,
    argv: list[str] | None = None,
) -> dict[str, float]:
    """Fit, then test, in a new run folder (or the resumed run's); returns the last
    validation and the test metrics."""
{% if not p.checkpointing %}
    if resume is not None:
        raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
    is_main = rank_zero_only.rank == 0
    folder = resolve_run(config.output_dir, name, resume, main_process=is_main)
    silence_known_notices(resumed=folder.resumed)
    pl.seed_everything(config.trainer.seed, verbose=False)  # before the model's initialisation
    if config.trainer.accelerator in ("auto", "cuda") and torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on GPUs
    splits = load_splits(config)
    model = build_module(config, splits)
    resumed_step = None
{% if p.checkpointing %}
    if folder.checkpoint is not None:
        # a torn or foreign file, or another run's settings: one clear error, before any write
        state = check_checkpoint(folder.checkpoint, model)
        if state is not None:
            check_resumable(state["hyper_parameters"]["config"], config)
            if folder.resumed:
                resumed_step = state["global_step"]
                epochs_done = state["epoch"] + 1  # Lightning counts epochs from 0
{% endif %}
    if not fast_dev_run:  # everything is built and checked: only now does the folder appear
        folder.start(config, argv or sys.argv, style="lightning")
    status, trainer = "failed", None
    signals = StopSignals().install()  # SIGTERM and SIGINT end the run at a batch boundary
    try:
        if not fast_dev_run:
{% if p.checkpointing %}
            if resumed_step is not None and is_main:  # the rows after it are logged again
                trim_metrics(folder.logs / "metrics.csv", epochs_done, resumed_step)
{% endif %}
{% if p.data_source != "synthetic" %}
            if splits.labels is not None and is_main:
                save_labels(splits.labels, folder.path)
{% endif %}
            os.environ[RUN_DIR_VARIABLE] = str(folder.path)  # processes for other devices join
        trainer = build_trainer(config, folder, fast_dev_run, resumed_step, signals)
        datamodule = DataModule(config, splits)
        trainer.fit(model, datamodule=datamodule, ckpt_path=folder.checkpoint)
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        if splits.test is not None:
{% if p.best_checkpoint %}
            best = None if fast_dev_run else trainer.checkpoint_callback.best_model_path or None
            if best is not None:  # another model's weights: one clear error, not Lightning's
                check_checkpoint(best, model)
{% else %}
            best = None
{% endif %}
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            metrics.update({name: float(value) for name, value in results[0].items()})
            if trainer.is_global_zero:
                print("test: " + " ".join(f"{k}={v:.4g}" for k, v in results[0].items()))
        signals.check()  # a signal during the test: the run stops as it would in fit
        status = "finished"
    except TrainingDiverged:
        status = "diverged"
        raise
    except (Interrupted, KeyboardInterrupt, SystemExit) as stop:
        # Lightning ends a fit stopped by SIGTERM with SIGTERMException, by Ctrl-C with SystemExit
        status = "interrupted"
        if not isinstance(stop, Interrupted):
            sigterm = isinstance(stop, SIGTERMException)
            stop = Interrupted(signal.SIGTERM if sigterm else signal.SIGINT)
        if (folder.checkpoints / "last.ckpt").exists():
            stop.run_dir = folder.path  # the stop line says how to continue
        raise stop from None
    finally:
        signals.restore()
        os.environ.pop(RUN_DIR_VARIABLE, None)
{% if p.best_checkpoint %}
        score = None
        if not fast_dev_run and trainer is not None:
            score = trainer.checkpoint_callback.best_model_score
        folder.finish(status, best=None if score is None else float(score))
{% else %}
        folder.finish(status)
{% endif %}
    if torch.distributed.is_initialized():
        # Lightning leaves gloo groups alive until exit; their threads must not outlive Python.
        torch.distributed.destroy_process_group()
    return metrics


def evaluate_checkpoint(config: Config, checkpoint: str) -> dict[str, float]:
    """The test split's metrics for a checkpoint's weights: the `test` command."""
{% if p.checkpointing %}
    silence_known_notices()
    pl.seed_everything(config.trainer.seed, verbose=False)
{% if p.data_source == "csv" %}
    # the training file's columns by name, in the order the checkpoint's model reads them
    splits = load_splits(config, trained_columns(checkpoint))
{% else %}
    splits = load_splits(config)
{% endif %}
    if splits.test is None:
        raise ConfigError(
            "is 0 in the run's config, so there is no test split",
            "data.test_split",
            "train a run with data.test_split above 0",
        )
    model = build_module(config, splits)
    state = check_checkpoint(checkpoint, model)
{% if p.fsdp %}
    if state is None:  # a sharded folder: its weights, gathered into this one process
        model.model.load_state_dict(sharded_weights(checkpoint, model.model.state_dict()))
    else:
        model.load_state_dict(state["state_dict"])
{% else %}
    model.load_state_dict(state["state_dict"])
{% endif %}
    trainer = pl.Trainer(
        accelerator=config.trainer.accelerator,
        devices=1,
        precision=config.trainer.precision,
        deterministic=config.trainer.deterministic,
        callbacks=[ProgressBar(refresh_rate=config.trainer.log_every_n_steps)],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    results = trainer.test(model, datamodule=DataModule(config, splits), verbose=False)
    return {name: float(value) for name, value in results[0].items()}
{% else %}
    del config
    raise ConfigError(
        "this project was generated with checkpointing switched off",
        checkpoint,
        "generate the project with trainer.checkpoint.enabled: true to keep trained weights",
    )
{% endif %}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """The `fit` command, for `python -m {{ pkg }}.train ARGS`."""
    return cli.main(["fit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
