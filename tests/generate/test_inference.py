"""Using a trained model in a generated project: checkpoint.load_trained_model, predict.py
(CSV/NPZ predictions; Lightning through LitModel.predict_step and Trainer.predict) and
export.py (ONNX and torch.export, checked against the eager model).

Each test trains a small project for one epoch in this process, then calls the project's
functions directly (the project's command line wires them to `predict` and `export`).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec import load_spec_text

from .datafiles import csv_data, image_folder_data, text_data
from .helpers import (
    EXAMPLE_SPECS,
    fifo_released_after,
    fit_args,
    load_example,
    project_module,
    spec_with,
    write_files,
)

STYLES = ("pytorch", "lightning")
QUICK = ["--accelerator", "cpu", "--set", "data.num_samples=256", "--set", "data.batch_size=32"]


class Project:
    """A generated project trained for one epoch, with its modules imported."""

    def __init__(self, package: str, folder: Path, argv: list[str]) -> None:
        self.package = package
        self.modules = {
            name: importlib.import_module(f"{package}.{name}")
            for name in ("config", "checkpoint", "data", "predict", "export")
        }
        config = self.modules["config"]
        self.config = config.load_config(fit_args(config, argv))
        outputs = folder / "outputs"
        found = sorted(outputs.rglob("best.ckpt")) or sorted(outputs.rglob("last.ckpt"))
        self.checkpoint = str(found[-1])

    def predict(self, source: str | None, output: Path) -> int:
        return self.modules["predict"].predict(self.config, self.checkpoint, source, str(output))

    def export(self, fmt: str, output: Path) -> Path:
        return self.modules["export"].export_model(self.config, self.checkpoint, fmt, str(output))

    def eager(self, inputs):
        import torch

        model = self.modules["checkpoint"].load_trained_model(self.config, self.checkpoint)
        assert not model.training
        with torch.no_grad():
            return model(inputs)

    def examples(self, split: str, count: int):
        import torch

        dataset = getattr(self.modules["data"].load_splits(self.config), split)
        return torch.stack([dataset[index][0] for index in range(min(count, len(dataset)))])


@contextlib.contextmanager
def trained(spec, style: str, folder: Path, argv: list[str]) -> Iterator[Project]:
    """Generate the project in `folder`, train it for one epoch in this process, and give
    its modules (imported from it until the block ends)."""
    write_files(render_project(spec, style), folder)
    package = build_context(spec, style)["package_name"]
    argv = [*argv, "--output-dir", str(folder / "outputs")]
    with project_module(folder, package) as train:
        train.main([*argv, "--max-epochs", "1"])
        yield Project(package, folder, argv)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_predict_gives_the_same_numbers_in_both_styles(tmp_path, torch_one_thread):
    """The default project (an MLP classifier on synthetic data): the test split's
    predictions, with class probabilities, equal in both styles and equal to the eager
    model's softmax; NPZ holds the raw outputs; a .npy of inputs (no targets) works too."""
    import torch

    spec = spec_with()
    tables, arrays = {}, {}
    for style in STYLES:
        with trained(spec, style, tmp_path / style, QUICK) as project:
            rows = project.predict(None, tmp_path / f"{style}.csv")
            assert rows == project.predict(None, tmp_path / f"{style}.npz")
            tables[style] = read_csv(tmp_path / f"{style}.csv")
            arrays[style] = dict(np.load(tmp_path / f"{style}.npz"))
            inputs = project.examples("test", rows)
            expected = project.eager(inputs)
            torch.testing.assert_close(
                torch.from_numpy(arrays[style]["outputs"]), expected, atol=1e-6, rtol=0
            )
            np.save(tmp_path / "inputs.npy", inputs[:5].numpy())  # inputs only, no targets
            assert project.predict(str(tmp_path / "inputs.npy"), tmp_path / "few.csv") == 5
            few = read_csv(tmp_path / "few.csv")  # no true label in a file of inputs
            assert [row["id"] for row in few] == ["0", "1", "2", "3", "4"]
            assert [{**row, "id": None} for row in few] == [
                {key: (None if key == "id" else value) for key, value in row.items() if key != "label"}
                for row in tables[style][:5]
            ]
    assert len(tables["pytorch"]) == 25  # 256 examples, test_split 0.1
    assert list(tables["pytorch"][0]) == ["id", "label", "prediction", "prob_0", "prob_1", "prob_2"]
    for plain, lightning in zip(tables["pytorch"], tables["lightning"], strict=True):
        assert plain["prediction"] == lightning["prediction"]
        for name in ("prob_0", "prob_1", "prob_2"):
            assert float(plain[name]) == pytest.approx(float(lightning[name]), abs=1e-6)
        probabilities = [float(plain[f"prob_{index}"]) for index in range(3)]
        assert math.isclose(sum(probabilities), 1, abs_tol=1e-6)
        assert plain["prediction"] == str(probabilities.index(max(probabilities)))
    np.testing.assert_allclose(
        arrays["pytorch"]["outputs"], arrays["lightning"]["outputs"], atol=1e-6
    )
    assert set(arrays["pytorch"]) == {"ids", "outputs", "label", "prediction", "prob_0", "prob_1", "prob_2"}
    assert arrays["pytorch"]["outputs"].shape == (25, 3)


@pytest.mark.slow
def test_lightning_predict_step_takes_the_data_modules_batches(tmp_path, torch_one_thread):
    """Trainer.predict on LitModel.load_from_checkpoint with the test loader's (inputs,
    targets) batches, as the issue tried: the model's outputs, not an AttributeError."""
    import torch

    with trained(spec_with(), "lightning", tmp_path, QUICK) as project:
        import pytorch_lightning as pl

        module = importlib.import_module(f"{project.package}.module")
        datamodule = importlib.import_module(f"{project.package}.datamodule").DataModule(
            project.config
        )
        datamodule.setup("predict")
        loader = datamodule.test_dataloader()
        lit = module.LitModel.load_from_checkpoint(project.checkpoint, weights_only=False)
        trainer = pl.Trainer(
            accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        batches = trainer.predict(lit, dataloaders=loader)
        outputs = torch.cat(batches)
        inputs = torch.cat([inputs for inputs, _ in loader])
        torch.testing.assert_close(outputs, project.eager(inputs), atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_bad_inputs_are_one_clear_error_and_write_nothing(style, tmp_path, torch_one_thread):
    with trained(spec_with(), style, tmp_path, QUICK) as project:
        config_error = project.modules["config"].ConfigError
        checkpoint_error = project.modules["checkpoint"].CheckpointError
        output = tmp_path / "predictions.csv"
        cases = [
            # (source, output, checkpoint, error type, words in the message, words in the hint)
            (None, tmp_path / "p.json", None, config_error, ["p.json", "output format"], ".csv"),
            ("missing.npy", output, None, config_error, ["missing.npy", "no such file"], ".npy"),
            (None, output, str(tmp_path / "none.ckpt"), checkpoint_error, ["none.ckpt"], None),
        ]
        (tmp_path / "table.txt").write_text("1,2,3\n", encoding="utf-8")
        cases.append(("table.txt", output, None, config_error, ["table.txt", ".npy"], ".npz"))
        np.save(tmp_path / "wide.npy", np.zeros((4, 21), dtype="float32"))
        cases.append(("wide.npy", output, None, config_error, ["[4, 21]", "[rows, 20]"], "row"))
        np.savez(tmp_path / "other.npz", inputs=np.zeros((4, 20), dtype="float32"))
        cases.append(("other.npz", output, None, config_error, ["'x'", "inputs"], "savez"))
        (tmp_path / "torn.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
        cases.append(("torn.npy", output, None, config_error, ["torn.npy", "cannot read"], None))
        for name, value in (("nan", np.nan), ("inf", -np.inf)):
            values = np.zeros((4, 20), dtype="float32")
            values[2, 7] = value
            np.save(tmp_path / f"{name}.npy", values)
            words = [f"{name}.npy: row 2 (from 0), position [7]: {value}", "not a finite number"]
            cases.append((f"{name}.npy", output, None, config_error, words, "correct the value"))
        fifo_released_after(tmp_path / "fifo.npy")  # read, it would wait for a writer
        words = ["fifo.npy: is a FIFO (named pipe), not a regular file"]
        cases.append(("fifo.npy", output, None, config_error, words, ".npy"))
        np.save(tmp_path / "text.npy", np.full((4, 20), "1.5"))
        words = ["text.npy: holds text (<U3), not numbers"]
        cases.append(("text.npy", output, None, config_error, words, ".npy"))
        with open(tmp_path / "huge.npy", "wb") as handle:  # a header with no data after it
            header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 20)}
            np.lib.format.write_array_header_1_0(handle, header)
        words = ["huge.npy: its header claims shape [1000000000000, 20]", "holds 0 bytes"]
        cases.append(("huge.npy", output, None, config_error, words, ".npy"))
        np.save(tmp_path / "complex.npy", np.zeros((4, 20), dtype="complex64"))
        words = ["complex.npy: inputs of type torch.complex64", "real numbers"]
        cases.append(("complex.npy", output, None, config_error, words, "real numbers"))
        for source, target, checkpoint, error, words, hint in cases:
            path = None if source is None else str(tmp_path / source)
            with pytest.raises(error) as caught:
                project.modules["predict"].predict(
                    project.config, checkpoint or project.checkpoint, path, str(target)
                )
            message = str(caught.value)
            assert "\n" not in message and all(word in message for word in words), message
            if hint is not None:
                assert hint in caught.value.hint, caught.value.hint
            assert not target.exists()
        with pytest.raises(config_error, match="unknown export format 'tflite'") as caught:
            project.export("tflite", tmp_path / "model.tflite")
        assert "onnx, torch.export" in caught.value.hint
        with pytest.raises(config_error, match=r"a onnx export is a \.onnx file"):
            project.export("onnx", tmp_path / "model.pt2")
        assert not list(tmp_path.glob("*predictions*")) and not list(tmp_path.glob("*model*"))


@pytest.mark.slow
def test_export_without_the_export_extra_names_it(tmp_path, torch_one_thread, monkeypatch):
    with trained(spec_with(), "pytorch", tmp_path, QUICK) as project:
        export = project.modules["export"]
        real = export.importlib.util.find_spec
        monkeypatch.setattr(
            export.importlib.util,
            "find_spec",
            lambda name, *args: None if name == "onnxscript" else real(name, *args),
        )
        with pytest.raises(project.modules["config"].ConfigError) as caught:
            project.export("onnx", tmp_path / "model.onnx")
        assert "export --format onnx needs onnx and onnxscript (onnxscript not installed)" in str(
            caught.value
        )
        assert caught.value.hint == "pip install -e .[export]"
        assert not (tmp_path / "model.onnx").exists()


SEQUENCE_MODELS = ("rnn_lm", "transformer_sequence_regression", "rnn_sequence_classification")


def _example(name: str):
    return next(path for path in EXAMPLE_SPECS if path.stem == name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "example",
    [
        "mlp_classification",
        "cnn_classification",
        "rnn_lm",
        "transformer_sequence_regression",
        "rnn_sequence_classification",
    ],
)
def test_exports_compute_what_the_model_computes(example, tmp_path, torch_one_thread):
    """torch.export (.pt2, loaded back) and ONNX (run by onnxruntime) match the eager model
    within 1e-5 on a batch size other than the traced one, and sequence models on a shorter
    sequence too (an LSTM or GRU runs as a scan, not unrolled); ONNX names its input `input`."""
    import torch

    onnxruntime = pytest.importorskip("onnxruntime")
    spec = load_example(_example(example))
    argv = ["--accelerator", "cpu", "--set", "data.num_samples=128"]
    with trained(spec, "pytorch", tmp_path / "project", argv) as project:
        inputs = project.examples("train", 5)
        expected = project.eager(inputs)
        program = torch.export.load(project.export("torch.export", tmp_path / "model.pt2"))
        path = project.export("onnx", tmp_path / "model.onnx")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for size in (5, 1):  # the traced batch has 2 examples
            with torch.no_grad():
                exported = program.module()(inputs[:size])
            torch.testing.assert_close(exported, expected[:size], atol=1e-5, rtol=0)
            (outputs,) = session.run(None, {name: inputs[:size].numpy()})
            torch.testing.assert_close(
                torch.from_numpy(outputs), expected[:size], atol=1e-5, rtol=0
            )
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            "model.onnx",
            "model.pt2",
            "project",
        ]  # no temporary files left
        assert [item.name for item in session.get_inputs()] == ["input"]
        assert [item.name for item in session.get_outputs()] == [
            "predictions" if "regression" in example else "logits"
        ]
        if example in SEQUENCE_MODELS:  # a sequence length other than the training examples'
            shorter = inputs[:, : inputs.shape[1] // 2 + 1]
            expected = project.eager(shorter)
            with torch.no_grad():
                exported = program.module()(shorter)
            torch.testing.assert_close(exported, expected, atol=1e-5, rtol=0)
            (outputs,) = session.run(None, {name: shorter.numpy()})
            torch.testing.assert_close(torch.from_numpy(outputs), expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_predict_reads_a_csv_without_its_target_column(tmp_path, torch_one_thread):
    """A csv project: the input file needs the feature columns (the label column may be
    missing); predictions are the training data's class names."""
    spec = spec_with(**csv_data(tmp_path), **{"data.batch_size": 32})
    with trained(spec, "pytorch", tmp_path / "project", ["--accelerator", "cpu"]) as project:
        lines = (tmp_path / "table.csv").read_text(encoding="utf-8").splitlines()
        unlabelled = tmp_path / "new.csv"
        unlabelled.write_text(
            "\n".join(line.rsplit(",", 1)[0] for line in lines[:11]) + "\n", encoding="utf-8"
        )
        assert project.predict(str(unlabelled), tmp_path / "out.csv") == 10
        table = read_csv(tmp_path / "out.csv")
        assert list(table[0]) == ["id", "prediction", "prob_cat", "prob_dog", "prob_fox"]
        assert {row["prediction"] for row in table} <= {"cat", "dog", "fox"}
        labelled = tmp_path / "labelled.csv"
        labelled.write_text("\n".join(lines[:11]) + "\n", encoding="utf-8")
        project.predict(str(labelled), tmp_path / "same.csv")
        assert read_csv(tmp_path / "same.csv") == table
        short = tmp_path / "short.csv"
        short.write_text("\n".join(line.split(",", 1)[1] for line in lines[:3]), encoding="utf-8")
        error = project.modules["config"].ConfigError
        with pytest.raises(error, match="short.csv:1: column 'f0': not in the header") as caught:
            project.predict(str(short), tmp_path / "bad.csv")
        assert "f0, f1, f2, f3, f4, f5" in caught.value.hint
        assert not (tmp_path / "bad.csv").exists()


def _write_columns(source: Path, target: Path, order: list[str], rows: int | None = None) -> None:
    """`source`'s table with its columns in `order` (by name), and its first `rows` rows."""
    table = read_csv(source)[:rows]
    lines = [",".join(order), *(",".join(row[name] for name in order) for row in table)]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_predict_matches_csv_columns_by_name_from_the_checkpoint(style, tmp_path, torch_one_thread):
    """The feature columns (names, order) are kept in the checkpoint: the training file with
    its columns reordered gives the same test-split predictions and `test` metrics; a new file with its columns
    reordered gives the same predictions, even with the training file deleted; a missing
    column is one error line naming it."""
    spec = spec_with(**csv_data(tmp_path), **{"data.batch_size": 32})
    with trained(spec, style, tmp_path / "project", ["--accelerator", "cpu"]) as project:
        training = tmp_path / "table.csv"
        project.predict(None, tmp_path / "test.csv")
        source = read_csv(training)  # each prediction: its row in the source, and its label
        test = read_csv(tmp_path / "test.csv")
        assert len(test) == 24 and len({row["id"] for row in test}) == 24
        assert all(source[int(row["id"])]["label"] == row["label"] for row in test)
        assert [int(row["id"]) for row in test] != sorted(int(row["id"]) for row in test)
        evaluate = importlib.import_module(f"{project.package}.train").evaluate_checkpoint
        metrics = evaluate(project.config, project.checkpoint)
        names = ["f0", "f1", "f2", "f3", "f4", "f5", "label"]
        _write_columns(training, tmp_path / "new.csv", names, rows=10)
        project.predict(str(tmp_path / "new.csv"), tmp_path / "new_out.csv")
        _write_columns(training, training, names[::-1])  # the same table, columns reversed
        project.predict(None, tmp_path / "reordered_test.csv")
        assert read_csv(tmp_path / "reordered_test.csv") == read_csv(tmp_path / "test.csv")
        assert evaluate(project.config, project.checkpoint) == pytest.approx(metrics)  # `test`
        training.unlink()
        _write_columns(tmp_path / "new.csv", tmp_path / "shuffled.csv", ["f3", "label", "f5", "f0", "f1", "f4", "f2"])
        assert project.predict(str(tmp_path / "shuffled.csv"), tmp_path / "shuffled_out.csv") == 10
        assert read_csv(tmp_path / "shuffled_out.csv") == read_csv(tmp_path / "new_out.csv")
        marked = tmp_path / "excel.csv"  # Excel's "CSV UTF-8": a byte order mark first
        marked.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "new.csv").read_bytes())
        project.predict(str(marked), tmp_path / "excel_out.csv")
        assert read_csv(tmp_path / "excel_out.csv") == read_csv(tmp_path / "new_out.csv")
        nan = tmp_path / "nan.csv"
        nan.write_text("f0,f1,f2,f3,f4,f5\n1,2,3,4,5,6\n1,2,3,nan,5,6\n", encoding="utf-8")
        with pytest.raises(project.modules["config"].ConfigError) as caught:
            project.predict(str(nan), tmp_path / "bad.csv")
        assert str(caught.value) == f"{nan}:3: column 'f3': 'nan' is not a finite number"
        _write_columns(tmp_path / "new.csv", tmp_path / "no_f4.csv", ["f0", "f1", "f2", "f3", "f5"])
        error = project.modules["config"].ConfigError
        with pytest.raises(error, match="no_f4.csv:1: column 'f4': not in the header") as caught:
            project.predict(str(tmp_path / "no_f4.csv"), tmp_path / "bad.csv")
        assert "\n" not in str(caught.value)
        assert not (tmp_path / "bad.csv").exists()
        import torch

        state = torch.load(project.checkpoint, weights_only=True)
        assert state["data"]["columns"] == names[:-1] and state["data"]["labels"] == ["cat", "dog", "fox"]
        state["data"]["columns"] = [0, 1, 2, 3, 4, 5]  # forged, then sealed as a forger would
        forged = tmp_path / "forged.ckpt"
        project.modules["checkpoint"].save_checkpoint(state, forged)
        with pytest.raises(project.modules["checkpoint"].CheckpointError) as caught:
            project.modules["predict"].predict(project.config, str(forged), str(tmp_path / "new.csv"), str(tmp_path / "bad.csv"))
        assert str(caught.value).startswith(f"{forged}: data: not the input shape, outputs and labels")


@pytest.mark.slow
def test_predict_reads_images_and_text(tmp_path, torch_one_thread):
    """An image-folder project predicts a folder of images (ids are the files), and a text
    language model the next token after each block of a text file."""
    data = image_folder_data(tmp_path / "data")
    spec = spec_with(**data, **{"model.type": "cnn", "data.input_shape": (3, 8, 8)})
    with trained(spec, "pytorch", tmp_path / "images", ["--accelerator", "cpu"]) as project:
        folder = Path(data["data.path"]) / "red"
        assert project.predict(str(folder), tmp_path / "images.csv") == 16
        table = read_csv(tmp_path / "images.csv")
        assert [row["id"] for row in table] == [str(path) for path in sorted(folder.glob("*.png"))]
        assert list(table[0])[1:] == ["prediction", "prob_blue", "prob_green", "prob_red"]
        assert project.predict(str(folder / "0.png"), tmp_path / "one.csv") == 1
        with pytest.raises(project.modules["config"].ConfigError, match="not an image"):
            project.predict(str(Path(data["data.path"]) / "notes.txt"), tmp_path / "bad.csv")
        fifo = fifo_released_after(tmp_path / "fifo.png")  # decoded, it would wait for a writer
        with pytest.raises(project.modules["config"].ConfigError) as caught:
            project.predict(str(fifo), tmp_path / "bad.csv")
        assert str(caught.value) == f"{fifo}: is a FIFO (named pipe), not a regular file"
        test = read_csv(tmp_path / "test.csv") if project.predict(None, tmp_path / "test.csv") else []
        assert test and all(Path(row["id"]).parent.name == row["label"] for row in test)
    (tmp_path / "text").mkdir()
    text = text_data(tmp_path / "text")
    spec = load_spec_text(
        yaml.safe_dump(
            {
                "name": "text-lm",
                "task": "language_modelling",
                "model": {"type": "rnn", "embedding_dim": 16, "hidden_size": 16, "num_layers": 1},
                "data": {"source": "text", "path": text["data.path"], "block_size": 16},
            }
        ),
        "text-lm.yaml",
    )
    with trained(spec, "pytorch", tmp_path / "lm", ["--accelerator", "cpu"]) as project:
        sample = tmp_path / "sample.txt"
        sample.write_text("the quick brown fox jumps over the lazy cat", encoding="utf-8")  # 43
        assert project.predict(str(sample), tmp_path / "next.csv") == 2  # blocks of 16
        table = read_csv(tmp_path / "next.csv")
        assert list(table[0]) == ["id", "next_token", "probability"]
        vocabulary = set("the quick brown fox jumps over the lazy dog. ") | {"<unk>"}
        assert {row["next_token"] for row in table} <= vocabulary
        assert all(0 < float(row["probability"]) <= 1 for row in table)
        sample.write_text("too short", encoding="utf-8")
        with pytest.raises(project.modules["config"].ConfigError, match="fewer than"):
            project.predict(str(sample), tmp_path / "short.csv")


BRANCHY = '''import torch
from torch import nn


class Branchy(nn.Module):
    """A linear layer whose output's sign depends on the data: torch.export cannot trace it."""

    def __init__(self, in_features: int, num_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.linear(inputs)
        if outputs.sum() > 0:
            return outputs
        return -outputs
'''


@pytest.mark.slow
def test_a_model_torch_export_cannot_trace_is_one_clear_error(tmp_path, torch_one_thread):
    """A custom model with data-dependent control flow: both formats name the model and the
    reason in one line, and write nothing."""
    (tmp_path / "branchy.py").write_text(BRANCHY, encoding="utf-8")
    tree = {
        "name": "branchy",
        "model": {
            "type": "custom",
            "source": "branchy.py:Branchy",
            "args": {"in_features": 20, "num_outputs": 3},
        },
        "data": {"input_shape": [20]},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(tree), encoding="utf-8")
    spec = load_example(tmp_path / "spec.yaml")
    with trained(spec, "pytorch", tmp_path / "project", QUICK) as project:
        for fmt, name in (("torch.export", "model.pt2"), ("onnx", "model.onnx")):
            with pytest.raises(project.modules["config"].ConfigError) as caught:
                project.export(fmt, tmp_path / name)
            message = str(caught.value)
            assert message.startswith("torch.export cannot trace the custom model (")
            assert "\n" not in message and "data-dependent" in message
            assert "traceable" in caught.value.hint
            assert not (tmp_path / name).exists()


@pytest.mark.slow
def test_lightning_fsdp_checkpoint_folder_predicts_and_exports(tmp_path, torch_one_thread):
    """Lightning's FSDP saves a checkpoint as a folder: torch.distributed.checkpoint shards
    under "model" (LitModel's names) and meta.pt beside them. predict and export read it in one
    process. No GPU here to train with FSDP, so the folder is written as FSDPStrategy's
    save_checkpoint writes it, from the single-file checkpoint of the same run (trained with
    --strategy auto), and sealed as the project's SealedFSDPStrategy seals it: both give the
    same predictions."""
    import torch
    import torch.distributed.checkpoint as dcp

    spec = spec_with(**{"trainer.strategy": "fsdp"})
    with trained(spec, "lightning", tmp_path, [*QUICK, "--strategy", "auto"]) as project:
        checkpoint_error = project.modules["checkpoint"].CheckpointError
        single = torch.load(project.checkpoint, map_location="cpu", weights_only=True)
        folder = tmp_path / "sharded.ckpt"
        with pytest.warns(UserWarning, match="torch.distributed is disabled"):
            dcp.save({"model": single.pop("state_dict")}, checkpoint_id=folder, no_dist=True)
        single.pop("optimizer_states")
        torch.save(single, folder / "meta.pt")
        seal_folder = importlib.import_module(f"{project.package}.checkpoint_folders").seal_folder
        seal_folder(folder)

        rows = project.predict(None, tmp_path / "file.csv")
        file_checkpoint, project.checkpoint = project.checkpoint, str(folder)
        assert project.predict(None, tmp_path / "folder.csv") == rows
        assert read_csv(tmp_path / "folder.csv") == read_csv(tmp_path / "file.csv")
        exported = project.export("onnx", tmp_path / "model.onnx")
        assert exported.is_file()

        (tmp_path / "empty.ckpt").mkdir()
        other = tmp_path / "other.ckpt"
        with pytest.warns(UserWarning, match="torch.distributed is disabled"):
            dcp.save({"model": {"model.net.0.weight": torch.zeros(3, 3)}}, checkpoint_id=other)
        seal_folder(other)
        for bad, words in [(tmp_path / "empty.ckpt", "no .metadata"), (other, "does not fit")]:
            with pytest.raises(checkpoint_error, match=words) as caught:
                project.modules["predict"].predict(
                    project.config, str(bad), None, str(tmp_path / "bad.csv")
                )
            assert "\n" not in str(caught.value) and str(bad) in str(caught.value)
            assert not (tmp_path / "bad.csv").exists()
        assert file_checkpoint != project.checkpoint


@pytest.mark.slow
def test_plain_fsdp_checkpoint_of_another_model_is_one_clear_error(tmp_path, torch_one_thread):
    """DCP raises a CheckpointException, a BaseException: it used to escape as a traceback.
    Shards of another model beside this run's own loop.pt: one line naming the folder and
    the first missing weight, and nothing written."""
    import shutil

    import torch
    import torch.distributed.checkpoint as dcp

    spec = spec_with(**{"trainer.strategy": "fsdp"})
    with trained(spec, "pytorch", tmp_path, QUICK) as project:
        folder = Path(project.checkpoint)
        assert (folder / ".metadata").is_file() and (folder / "loop.pt").is_file()
        assert project.predict(None, tmp_path / "ok.csv") == 25
        other = tmp_path / "other.ckpt"
        other.mkdir()
        shutil.copy(folder / "loop.pt", other / "loop.pt")
        with pytest.warns(UserWarning, match="torch.distributed is disabled"):
            dcp.save({"model": {"net.0.weight": torch.zeros(3, 3)}}, checkpoint_id=other)
        importlib.import_module(f"{project.package}.checkpoint_folders").seal_folder(other)
        checkpoint_error = project.modules["checkpoint"].CheckpointError
        with pytest.raises(checkpoint_error, match="does not fit this model") as caught:
            project.modules["predict"].predict(
                project.config, str(other), None, str(tmp_path / "bad.csv")
            )
        message = str(caught.value)
        assert "\n" not in message and str(other) in message and "Missing key" in message, message
        assert not (tmp_path / "bad.csv").exists()
