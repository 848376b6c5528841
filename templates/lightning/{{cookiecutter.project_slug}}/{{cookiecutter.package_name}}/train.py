{% set p = cookiecutter | project %}
{# the package by name where the lines stay within 100 columns #}
{% set pkg = p.package_name if p.package_name|length <= 30 else "<package>" %}
"""Train, validate and test the model, in a run folder of its own (run_folder.py).

    python -m {{ pkg }} fit [--name NAME] [--config FILE] [--resume last] ...
    python -m {{ pkg }}.train ...  # the same as fit

PyTorch Lightning: the loop is Lightning's Trainer, configured from config.yaml and
the command line. Run `--help` for every option.
"""

from __future__ import annotations

import csv
{% if p.spec.logging.tensorboard %}
import importlib.util
{% endif %}
import logging
import os
import re
import signal
import sys
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, TQDMProgressBar{{ ", EarlyStopping" if p.early_stopping }}, LearningRateMonitor
{% if p.fsdp %}
from pytorch_lightning.strategies import Strategy
{% endif %}
from pytorch_lightning.loggers import CSVLogger, Logger{{ ", MLFlowLogger" if "mlflow" in p.extra_loggers }}{{ ", TensorBoardLogger" if p.spec.logging.tensorboard }}{{ ", WandbLogger" if "wandb" in p.extra_loggers }}
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from . import cli
{% if p.checkpointing %}
from .checkpoint import AtomicCheckpointIO, RunFolderCheckpoint, check_checkpoint{{ ", SealedFSDPStrategy, sharded_weights" if p.fsdp }}
{% endif %}
from .config import Config, ConfigError
from .datamodule import DataModule
{% if p.feature_scaler or p.class_weights %}
from .preprocess import {{ ["class_weights" if p.class_weights, "fit_preprocessing" if p.feature_scaler]|select|join(", ") }}
{% endif %}
{% if p.fsdp %}
from .model import BLOCKS
{% endif %}
from .metrics import TrainingDiverged
from .module import LitModel
from .optim import optimizer_steps_per_epoch
from .run_folder import RUN_DIR_VARIABLE, Interrupted, Run, StopSignals, resolve_run, trim_metrics
{% if p.data_source != "synthetic" %}
from .sources import save_labels
{% endif %}


class RunCSVLogger(CSVLogger):
    """Lightning's CSVLogger, writing <run>/logs/metrics.csv. A resumed run appends to the
    file (Lightning's writer would delete a metrics.csv it finds in its folder)."""

    def __init__(self, run_dir: str) -> None:
        super().__init__(save_dir=run_dir, name="", version="logs")

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = AppendingWriter(self.log_dir)
        return self._experiment


class AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep the rows already in metrics.csv, and its columns."""
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="", encoding="utf-8") as handle:
                self.metrics_keys = sorted(csv.DictReader(handle).fieldnames or [])


def build_loggers(config: Config, folder: Run, resumed_step: int | None) -> list[Logger]:
    """CSV and TensorBoard (when installed) share the run's logs/ folder: one logger version
    per run, continued by a resumed run (TensorBoard hides what was logged after its
    checkpoint, as the rows after it are dropped from metrics.csv)."""
    loggers: list[Logger] = []
    if config.logging.csv:
        loggers.append(RunCSVLogger(str(folder.path)))
{% if p.spec.logging.tensorboard %}
    if config.logging.tensorboard and importlib.util.find_spec("tensorboard") is not None:
        loggers.append(
            TensorBoardLogger(
                save_dir=str(folder.path),
                name="",
                version="logs",
                default_hp_metric=False,
                purge_step=resumed_step,
            )
        )
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


class ProgressBar(TQDMProgressBar):
    """Lightning's bar, closed when the run stops with an error (a NaN loss, a full disk), so
    that the error line starts a line of its own."""

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, error: Any) -> None:
        for name in ("_train_progress_bar", "_val_progress_bar", "_test_progress_bar"):
            bar = getattr(self, name, None)
            if bar is not None:
                bar.close()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger version is the run folder's logs/, always
        return metrics


class StopOnSignal(Callback):
    """Ends the fit before the next batch once SIGTERM or SIGINT has come: the run keeps the
    checkpoint of its last whole epoch, which --resume continues."""

    def __init__(self, signals: StopSignals) -> None:
        self.signals = signals

    def on_train_batch_start(self, *args: Any) -> None:
        self.signals.check()

    def on_test_batch_start(self, *args: Any) -> None:
        self.signals.check()


def as_interrupted(stop: BaseException, folder: Run) -> Interrupted:
    """The stop, with the exit code of its signal: Lightning ends a fit stopped by SIGTERM
    with SIGTERMException and one stopped by Ctrl-C with SystemExit(1)."""
    if not isinstance(stop, Interrupted):
        stop = Interrupted(signal.SIGTERM if isinstance(stop, SIGTERMException) else signal.SIGINT)
    if (folder.checkpoints / "last.ckpt").exists():
        stop.run_dir = folder.path  # the stop line says how to continue
    return stop


def build_callbacks(config: Config, folder: Run, loggers: list[Logger]) -> list[Callback]:
    # The bar redraws at the logging interval: each redraw reads values back from the device.
    callbacks: list[Callback] = [ProgressBar(refresh_rate=config.trainer.log_every_n_steps)]
{% if p.checkpointing %}
    checkpoint = config.trainer.checkpoint
    dirpath = str(folder.checkpoints)
{% if p.best_checkpoint %}
    # best.ckpt first: trainer.checkpoint_callback (used for testing the best weights) is it
    callbacks.append(
        RunFolderCheckpoint(
            dirpath=dirpath,
            filename="best",
            monitor=checkpoint.monitor,
            mode=checkpoint.mode,
            save_top_k=1,
            enable_version_counter=False,  # one best.ckpt, replaced when the metric improves
        )
    )
{% endif %}
    if checkpoint.save_last:
        # last.ckpt after every epoch. (save_last=True would refresh it only in epochs where
        # best.ckpt improved, so --resume last could go back in time.)
        callbacks.append(
            RunFolderCheckpoint(
                dirpath=dirpath, filename="last", save_top_k=1, enable_version_counter=False
            )
        )
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


# What Lightning tells every run: the devices it found, product tips, the configured mixed
# precision, and that fit stopped at max_epochs
KNOWN_NOTICES = re.compile(
    r"(GPU|TPU|HPU) available: |💡 Tip: |Using \w+ Automatic Mixed Precision \(AMP\)$"
    r"|`Trainer.fit` stopped: `max_epochs="
)


def _not_a_known_notice(record: logging.LogRecord) -> bool:
    return not KNOWN_NOTICES.match(record.getMessage())


def silence_known_notices() -> None:
    """A run prints its own progress and results. Lightning's notices to every run and its
    known-benign warnings are silenced, each by its message and where it comes from."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_a_known_notice)
    # "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]", its one message below a warning
    logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)
    # "Received SIGTERM": the run says itself how it stopped, in one line
    logging.getLogger("pytorch_lightning.trainer.connectors.signal_connector").setLevel(
        logging.WARNING
    )
    # Lightning's own use of torch's LeafSpec, which newer torch versions deprecate.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"pytorch_lightning\.utilities\._pytree",
    )
    # Under bf16-mixed the model summary sizes the parameters at 32 bits, as they are stored.
    warnings.filterwarnings(
        "ignore",
        message=r"Precision [\w-]+ is not supported by the model summary",
        module=r"pytorch_lightning\.utilities\.model_summary",
    )
{% if not p.image_source %}
    # The data is in memory as tensors: worker processes would add overhead, not speed.
    warnings.filterwarnings(
        "ignore",
        message=r"The '\w+_dataloader' does not have many workers",
        module=r"pytorch_lightning\.trainer\.connectors\.data_connector",
    )
{% endif %}
{% if p.checkpointing %}
    # A resumed run writes its checkpoints into the folder it left them in.
    warnings.filterwarnings(
        "ignore",
        message=r"Checkpoint directory .* exists and is not empty",
        module=r"pytorch_lightning\.callbacks\.model_checkpoint",
    )
{% endif %}


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
    return SealedFSDPStrategy(
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
    silence_known_notices()
    trainer = config.trainer
{% if p.fsdp %}
    strategy = build_strategy(config)
{% endif %}
    # --fast-dev-run checks the wiring only: one batch per stage, nothing written.
    loggers = [] if fast_dev_run else build_loggers(config, folder, resumed_step)
    callbacks = build_callbacks(config, folder, loggers)
    if signals is not None:
        callbacks.append(StopOnSignal(signals))
    return pl.Trainer(
        max_epochs=trainer.max_epochs,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        num_nodes=trainer.num_nodes,  # SLURM and torchrun environments are detected by Lightning
        strategy={{ "strategy" if p.fsdp else "trainer.strategy" }},
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


{% if p.class_weights %}
def _as_list(weights: torch.Tensor | None) -> list[float] | None:
    return None if weights is None else weights.tolist()  # a hyperparameter of the checkpoint


{% endif %}
def build_module(config: Config, datamodule: DataModule) -> LitModel:
    datamodule.setup("fit")  # the model's input and output sizes come from the data
    splits = datamodule.splits
    batches = -(-len(splits.train) // config.data.batch_size)
    model = LitModel(
        config.to_dict(),
        splits.input_shape,
        splits.num_outputs,
        optimizer_steps_per_epoch(batches, config.trainer.accumulate_grad_batches),
{% if p.input_kind == "tokens" %}
        splits.vocab_size,
{% endif %}
{% if p.class_weights %}
        class_weights=_as_list(class_weights(config.data, splits.train, splits.num_outputs)),
{% endif %}
    )
{% if p.feature_scaler %}
    fit_preprocessing(model.model, splits.train, config.data)  # statistics of the training split
{% endif %}
    return model


def run(
    config: Config,
    resume: str | None = None,
    fast_dev_run: bool = False,
    name: str | None = None,
    argv: list[str] | None = None,
) -> dict[str, float]:
    """Fit, then test, in a new run folder (or the resumed run's); returns the final
    metrics (last validation and test)."""
{% if not p.checkpointing %}
    if resume is not None:
        raise ConfigError("--resume: this project was generated with checkpointing switched off")
{% endif %}
    folder = resolve_run(config.output_dir, name, resume, main_process=rank_zero_only.rank == 0)
    # Seed before anything random: model initialisation draws from the global RNG.
    pl.seed_everything(config.trainer.seed, verbose=False)
    if config.trainer.accelerator in ("auto", "cuda") and torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on GPUs
    datamodule = DataModule(config)
    model = build_module(config, datamodule)
    splits = datamodule.splits
    resumed_step, epochs_done = None, 0  # a resumed run: its checkpoint's step and epochs
{% if p.checkpointing %}
    if folder.checkpoint is not None:
        # a torn or foreign file: one clear error, before anything is written
        state = check_checkpoint(folder.checkpoint, model)
        if state is not None and folder.resumed:
            resumed_step = state["global_step"]
            epochs_done = state["epoch"] + 1  # Lightning counts epochs from 0
{% endif %}
    # Everything is built and checked: only now does the run folder appear.
    if not fast_dev_run:
        folder.start(config, argv or sys.argv, style="lightning")
    status = "failed"
    trainer = None
    # SIGTERM and SIGINT end the run at a batch boundary, with its last checkpoint kept
    signals = StopSignals().install()
    try:
        if not fast_dev_run:
            if resumed_step is not None and rank_zero_only.rank == 0:
                trim_metrics(folder.logs / "metrics.csv", epochs_done)  # logged again from here
{% if p.data_source != "synthetic" %}
            if splits.labels is not None and rank_zero_only.rank == 0:
                save_labels(splits.labels, folder.path)
{% endif %}
            os.environ[RUN_DIR_VARIABLE] = str(folder.path)  # processes for other devices join
        trainer = build_trainer(config, folder, fast_dev_run, resumed_step, signals)
        trainer.fit(model, datamodule=datamodule, ckpt_path=folder.checkpoint)
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        if splits.test is not None:
{% if p.best_checkpoint %}
            # Test the best weights when a best checkpoint exists, read with the checks of a
            # resume (its checksum, its contents, this model's shapes), not by Lightning alone.
            best = None if fast_dev_run else trainer.checkpoint_callback.best_model_path or None
            if best is not None:
                state = check_checkpoint(best, model)
{% if p.fsdp %}
                if state is not None:  # else a sharded folder, which Lightning loads
                    model.load_state_dict(state["state_dict"])
                    best = None
{% else %}
                model.load_state_dict(state["state_dict"])
                best = None
{% endif %}
{% else %}
            best = None
{% endif %}
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            test_metrics = {name: float(value) for name, value in results[0].items()}
            if trainer.is_global_zero:
                print("test: " + " ".join(f"{k}={v:.4g}" for k, v in test_metrics.items()))
            metrics.update(test_metrics)
        signals.check()  # a signal during the test: the run stops as it would in fit
        status = "finished"
    except TrainingDiverged:
        status = "diverged"
        raise
    except (Interrupted, KeyboardInterrupt, SystemExit) as stop:
        status = "interrupted"
        raise as_interrupted(stop, folder) from None
    finally:
        signals.restore()
        os.environ.pop(RUN_DIR_VARIABLE, None)
{% if p.best_checkpoint %}
        score = None if fast_dev_run or trainer is None else trainer.checkpoint_callback.best_model_score
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
    pl.seed_everything(config.trainer.seed, verbose=False)
    datamodule = DataModule(config)
    model = build_module(config, datamodule)
    if datamodule.splits.test is None:
        raise ConfigError(
            "is 0 in the run's config, so there is no test split",
            "data.test_split",
            "train a run with data.test_split above 0",
        )
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
    )
    results = trainer.test(model, datamodule=datamodule, verbose=False)
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
