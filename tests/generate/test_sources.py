"""Data sources read from files: csv, npz, npy, image_folder (Pillow), text, torchvision.

The files are made in tmp_path by tests/generate/datafiles.py. Both styles train on them and
must give the same per-step losses; the text and torchvision readers are checked at the
sources.py level (the text models come with the language-modelling task; torchvision is not
installed here, so a stand-in module plays its part).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec import load_spec_text

from .datafiles import FILE_SOURCES, ROWS, image_folder_data, text_data
from .helpers import (
    expect_clear_error,
    fifo_released_after,
    project_module,
    spec_with,
    train_losses,
    write_files,
)

STYLES = ("pytorch", "lightning")


def _project(spec, style, folder):
    return write_files(render_project(spec, style), folder), build_context(spec, style)


def _spec(source, folder, **extra):
    changes = {"name": f"{source}-project", **FILE_SOURCES[source](folder), **extra}
    if source == "image_folder":
        changes.update({"model.type": "cnn", "data.input_shape": (3, 8, 8)})
    return spec_with(**changes)


@pytest.mark.slow
@pytest.mark.parametrize("source", sorted(FILE_SOURCES))
def test_file_source_trains_the_same_in_both_styles(source, tmp_path, capsys, torch_one_thread):
    spec = _spec(source, tmp_path, **{"data.batch_size": 32})
    traces = {}
    for style in STYLES:
        folder, context = _project(spec, style, tmp_path / style)
        argv = ["--accelerator", "cpu", "--max-epochs", "3", "--output-dir", str(folder / "out")]
        traces[style] = train_losses(folder, context["package_name"], argv, steps=10_000)
    plain, lightning = traces["pytorch"], traces["lightning"]
    total = 48 if source == "image_folder" else ROWS  # 3 x 16 images, or table rows
    per_epoch = math.ceil((total - 2 * int(total * 0.1)) / 32)
    assert len(plain) == len(lightning) == 3 * per_epoch
    assert max(abs(a - b) for a, b in zip(plain, lightning, strict=True)) <= 1e-6
    assert all(math.isfinite(loss) for loss in plain)
    printed = capsys.readouterr().out
    if source in ("csv", "image_folder"):
        names = ["cat", "dog", "fox"] if source == "csv" else ["blue", "green", "red"]
        assert "classes: " + ", ".join(f"{i}={n}" for i, n in enumerate(names)) in printed
        for style in STYLES:
            (labels_file,) = (tmp_path / style / "out").glob("*/classes.json")  # in the run folder
            saved = json.loads(labels_file.read_text())
            assert saved == names


@pytest.mark.slow
@pytest.mark.parametrize("source", ["npz", "npy", "csv"])
def test_regression_from_files_learns(source, tmp_path, torch_one_thread):
    """Regression targets load as floats, one column per output, and the loss falls."""
    spec = spec_with(
        name="files-regression",
        task="regression",
        **FILE_SOURCES[source](tmp_path, "regression"),
        **{"optimizer.lr": 0.01},
    )
    folder, context = _project(spec, "pytorch", tmp_path / "project")
    argv = ["--accelerator", "cpu", "--max-epochs", "4", "--output-dir", str(folder / "out")]
    with project_module(folder, context["package_name"]) as train:
        first = train.main([*argv[:-2], "--output-dir", str(folder / "first"), "--max-epochs", "1"])
        last = train.main(argv)
    assert last["val_loss"] < first["val_loss"]


@pytest.mark.parametrize("style", STYLES)
def test_bad_csv_is_one_clear_error(style, tmp_path, capsys):
    spec = _spec("csv", tmp_path)
    path = tmp_path / "table.csv"
    lines = path.read_text().splitlines()
    lines[2] = "oops," + lines[2].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    folder, context = _project(spec, style, tmp_path / style)
    with project_module(folder, context["package_name"]) as train:
        expect_clear_error(
            train,
            ["--accelerator", "cpu", "--fast-dev-run"],
            capsys,
            f"error: {path}:3: column 'f0': 'oops' is not a number",
            hint="correct the value, or leave 'f0' out of data.features",
        )


# Each command in one process: the error lines of each, then the heavy modules loaded by then.
_MISSING_DATA_SCRIPT = """
import sys
from {package}.cli import main
commands = (
    ["fit"],
    ["test", "--run", "outputs/old"],
    ["predict", "--run", "outputs/old", "--output", "p.csv"],
    ["predict", "--run", "outputs/old", "--input", "new.csv", "--output", "p.csv"],
)
heavy = ["lightning", "pytorch_lightning", "torchmetrics", "{package}.model", "{package}.train"]
for argv in commands:
    print(*[name for name in heavy if name in sys.modules])
    print("command", *argv, file=sys.stderr, flush=True)
    try:
        main(argv)
    except SystemExit as stop:
        print("exit", stop.code, file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("style", STYLES)
def test_a_missing_data_file_is_named_before_the_model_is_built(style, tmp_path):
    """fit, test and predict on the test split stop at a missing data.path with the field and
    the config file named, before Lightning, torchmetrics, the model or the training code is
    imported (loading the config imports torch itself: its optimizer and loss checks).
    predict --input reads no training data, so it goes on (to the missing checkpoint)."""
    spec = _spec("csv", tmp_path)
    folder, context = _project(spec, style, tmp_path / style)
    package = context["package_name"]
    (tmp_path / "table.csv").unlink()
    run_dir = folder / "outputs" / "old"  # a run folder as fit leaves it, without checkpoints
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    (run_dir / "config.yaml").write_text((folder / "config.yaml").read_text())
    script = _MISSING_DATA_SCRIPT.format(package=package)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [""] * 4  # no heavy module before any command ended
    outputs = done.stderr.split("command ")[1:]
    missing = f"error: {tmp_path / 'table.csv'}: no such file (data.path in "
    hint = f"hint: put the CSV file at {tmp_path / 'table.csv'}, or point data.path in "
    for output, config_file in zip(
        outputs, ["config.yaml"] + ["outputs/old/config.yaml"] * 3, strict=True
    ):
        lines = output.splitlines()[1:]
        if "--input" in output:  # the training CSV is not needed
            assert lines[0].startswith("error: --ckpt best: no checkpoint file at"), output
            continue
        assert lines == [
            f"{missing}{config_file})",
            f"{hint}{config_file} at it (its first value came from the spec's data.path)",
            "exit 2",
        ], output


def test_a_missing_targets_file_names_its_field(tmp_path):
    """npy data has two files: the one missing is named by its own field."""
    spec = _spec("npy", tmp_path)
    folder, context = _project(spec, "pytorch", tmp_path / "pytorch")
    (tmp_path / "y.npy").unlink()
    with project_module(folder, context["package_name"], "sources") as sources:
        with pytest.raises(sources.DataError) as caught:
            sources.check_paths(sources.DataConfig())
    assert (
        str(caught.value)
        == f"{tmp_path / 'y.npy'}: no such file (data.targets_path in config.yaml)"
    )
    assert "the spec's data.targets_path" in caught.value.hint


@pytest.mark.parametrize("source", ["csv", "npy", "npz"])
def test_a_fifo_as_the_data_file_is_refused_at_once(source, tmp_path):
    """Opening a FIFO waits for a writer: data.path naming one is refused before it is read."""
    folder, context = _project(_spec(source, tmp_path), "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "sources") as sources:
        path = Path(sources.DataConfig().path)
        path.unlink()
        fifo_released_after(path)
        with pytest.raises(sources.DataError) as caught:
            sources.read_source(sources.DataConfig())
    assert str(caught.value) == f"{path}: is a FIFO (named pipe), not a regular file"


def _forged_npy(path: Path, shape: tuple[int, ...]) -> None:
    """An .npy header that claims `shape` of float32, with no data after it."""
    import numpy as np

    with open(path, "wb") as handle:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)


def test_npy_arrays_that_are_not_numbers_are_one_clear_error(tmp_path):
    """Text, dates, records, objects, a 0-d array or a header that claims a huge shape:
    one DataError naming the file (numpy would allocate what the header claims); a
    big-endian array is read as the same numbers."""
    import numpy as np

    folder, context = _project(_spec("npy", tmp_path), "pytorch", tmp_path / "project")
    inputs = tmp_path / "x.npy"
    clean = np.load(inputs)
    with project_module(folder, context["package_name"], "sources") as sources:
        plain = sources.read_source(sources.DataConfig()).dataset.tensors[0]
        np.save(inputs, clean.astype(">f4"))
        swapped = sources.read_source(sources.DataConfig()).dataset.tensors[0]
        assert swapped.dtype == plain.dtype and bool((swapped == plain).all())
        records = np.zeros(len(clean), dtype=[("a", "<f4"), ("b", "<i4")])
        cases = [
            (clean.astype(str), "holds text (<U"),
            (
                np.array(["2024-01-01"] * len(clean), dtype="datetime64[D]"),
                "holds dates (datetime64[D])",
            ),
            (records, "holds records (a structured array)"),
            (np.array([None] * len(clean), dtype=object), "holds Python objects (object)"),
            (np.float32(1.5), "holds a single value (a 0-d array), not one row per example"),
        ]
        for values, message in cases:
            np.save(inputs, values, allow_pickle=True)
            with pytest.raises(sources.DataError) as caught:
                sources.read_source(sources.DataConfig())
            assert str(caught.value).startswith(f"{inputs}: {message}"), caught.value
        _forged_npy(inputs, (10**12, 6))
        with pytest.raises(sources.DataError) as caught:
            sources.read_source(sources.DataConfig())
        assert str(caught.value).startswith(
            f"{inputs}: its header claims shape [1000000000000, 6] (24,000,000,000,000 bytes),"
            " but the file holds 0 bytes"
        )


def test_decompression_bomb_images_are_one_clear_error(tmp_path, monkeypatch):
    """An image whose header claims more pixels than Pillow's limit (MAX_IMAGE_PIXELS): a
    DataError, in training (sources) and in predict, for the error and the warning band."""
    from PIL import Image

    folder, context = _project(_spec("image_folder", tmp_path), "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "sources") as sources:
        dataset = sources.read_source(sources.DataConfig()).dataset
        path = dataset.files[0][0]
        predict = importlib.import_module(f"{context['package_name']}.predict")
        config = importlib.import_module(f"{context['package_name']}.config").Config()
        files = predict.read_inputs(config, str(path), None)[0]
        for limit in (100, 200):  # 14 x 18 = 252 pixels: over twice 100 (error), over 200 (warning)
            monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
            for images in (dataset, files):
                with pytest.raises(sources.DataError) as caught:
                    images[0]
                assert str(caught.value).startswith(
                    f"{path}: not a readable image (Image size (252"
                )


def test_csv_with_a_utf8_byte_order_mark_reads_as_without(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte order mark: the first column keeps its name."""
    folder, context = _project(_spec("csv", tmp_path), "pytorch", tmp_path / "project")
    path = tmp_path / "table.csv"
    with project_module(folder, context["package_name"], "sources") as sources:
        plain = sources.read_source(sources.DataConfig())
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        marked = sources.read_source(sources.DataConfig(features=["f0", "f1"]))
        assert sources.read_source(sources.DataConfig()).dataset.columns == plain.dataset.columns
    assert plain.dataset.columns == ["f0", "f1", "f2", "f3", "f4", "f5"]
    assert marked.dataset.columns == ["f0", "f1"] and marked.labels == plain.labels


@pytest.mark.parametrize("style", STYLES)
def test_non_finite_complex_and_repeated_columns_are_refused_with_where(style, tmp_path):
    """inf in a CSV cell, a column named twice in the header, inf or complex values in an
    array: one DataError naming the file, the row and the column (never trained on)."""
    folder, context = _project(_spec("csv", tmp_path), style, tmp_path / style)
    path = tmp_path / "table.csv"
    lines = path.read_text().splitlines()
    with project_module(folder, context["package_name"], "sources") as sources:
        inf = [*lines[:2], lines[2].replace(lines[2].split(",")[1], "inf", 1), *lines[3:]]
        repeated = [lines[0].replace("f3", "f1"), *lines[1:]]
        cases = [
            (inf, f"{path}:3: column 'f1': 'inf' is not a finite number"),
            (repeated, f"{path}:1: column 'f1': named 2 times in the header"),
        ]
        for table, message in cases:
            path.write_text("\n".join(table) + "\n", encoding="utf-8")
            with pytest.raises(sources.DataError) as caught:
                sources.read_source(sources.DataConfig())
            assert str(caught.value) == message
    folder, context = _project(_spec("npy", tmp_path), style, tmp_path / f"npy-{style}")
    import numpy as np

    inputs = tmp_path / "x.npy"
    clean = np.load(inputs)
    with project_module(folder, context["package_name"], "sources") as sources:
        infinite = clean.copy()
        infinite[4, 2] = np.inf
        cases = [
            (infinite, f"{inputs}: row 4 (from 0), position [2]: inf is not a finite number"),
            (clean.astype("complex64"), f"{inputs}: holds torch.complex64 values; the model reads"),
        ]
        for values, message in cases:
            np.save(inputs, values)
            with pytest.raises(sources.DataError) as caught:
                sources.read_source(sources.DataConfig())
            assert str(caught.value).startswith(message), caught.value


def test_image_folder_images_are_resized_and_normalised(tmp_path):
    image_folder_data(tmp_path, per_class=2, size=(5, 7))
    spec = spec_with(
        name="images",
        **{
            "data.source": "image_folder",
            "data.path": str(tmp_path / "images"),
            "data.input_shape": (1, 4, 6),
            "data.image_mean": (0.0,),
            "data.image_std": (1.0,),
        },
    )
    folder, context = _project(spec, "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "sources") as sources:
        config = sources.DataConfig()
        source = sources.read_source(config)
        image, label = source.dataset[3]  # sorted: blue 0, 1; green 0, 1; ...
    assert source.labels == ["blue", "green", "red"] and source.num_outputs == 3
    assert len(source.dataset) == 6 and label == 1
    assert tuple(image.shape) == (1, 4, 6) and 0.0 <= float(image.min()) <= float(image.max()) <= 1


def _text_sources(tmp_path, text, **changes):
    path = tmp_path / "input.txt"
    path.write_text(text, encoding="utf-8")
    spec = spec_with(
        name="text-lm",
        **{
            "task": "language_modelling",
            "model.type": "transformer",
            "data.source": "text",
            "data.path": str(path),
            "data.block_size": 4,
            **changes,
        },
    )
    folder, context = _project(spec, "pytorch", tmp_path / "project")
    return project_module(folder, context["package_name"], "sources")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["transformer", "rnn"])
def test_text_language_model_runs_in_both_styles(model, tmp_path, capsys, torch_one_thread):
    """A text file feeds language_modelling: token-id blocks in, the next token at every
    position out, the embedding and head sized by the training text's vocabulary."""
    data = text_data(tmp_path)
    text_spec = load_spec_text(
        yaml.safe_dump(
            {
                "name": f"text-{model}",
                "task": "language_modelling",
                "model": {"type": model, "embedding_dim": 16, "num_heads": 2},
                "data": {"source": "text", "path": data["data.path"], "block_size": 16},
            }
        ),
        "text-lm.yaml",
    )
    vocabulary = ["<unk>"] + sorted(set("the quick brown fox jumps over the lazy dog. "))
    losses = {}
    for style in STYLES:
        folder, context = _project(text_spec, style, tmp_path / style)
        argv = ["--fast-dev-run", "--accelerator", "cpu", "--output-dir", str(folder / "out")]
        with project_module(folder, context["package_name"]) as train:
            metrics = train.main(argv)
        assert {"test_loss", "test_perplexity"} <= set(metrics), metrics
        assert all(math.isfinite(value) for value in metrics.values()), metrics
        # an untrained model is close to uniform over the vocabulary
        assert abs(metrics["test_loss"] - math.log(len(vocabulary))) < 1.0, metrics
        losses[style] = metrics["test_loss"]
    assert f"vocabulary: {len(vocabulary)} tokens (char)" in capsys.readouterr().out
    assert losses["pytorch"] == pytest.approx(losses["lightning"], abs=1e-5)


def test_text_vocabulary_comes_from_the_training_part_only(tmp_path):
    # 100 characters: train is the first 80, val the next 10, test the last 10
    text = "abcab" * 16 + "abcabcabca" + "zzzzzzzzzz"
    with _text_sources(tmp_path, text, **{"data.val_split": 0.1, "data.test_split": 0.1}) as src:
        source = src.read_source(src.DataConfig())
    assert source.labels == ["<unk>", "a", "b", "c"] and source.num_outputs == 4
    inputs, targets = source.train.tensors
    assert inputs.shape == targets.shape == (19, 4)  # (80 - 1) // 4 blocks of 4 tokens
    assert inputs.flatten()[1:].tolist() == targets.flatten()[:-1].tolist()  # shifted by one
    assert inputs[0].tolist() == [1, 2, 3, 1]
    test_inputs, _ = source.test.tensors
    assert set(test_inputs.flatten().tolist()) == {0}  # "z" never occurs in training: <unk>


def test_text_whitespace_tokens_and_a_too_short_split(tmp_path):
    with _text_sources(
        tmp_path, "one two three two one " * 10, **{"data.tokenizer": "whitespace"}
    ) as src:
        source = src.read_source(src.DataConfig())
        assert source.labels == ["<unk>", "one", "three", "two"]
        config = src.DataConfig()
        config.block_size = 40
        with pytest.raises(src.DataError, match="fewer than data.block_size"):
            src.read_source(config)


def _fake_torchvision(missing: bool):
    """A stand-in for torchvision.datasets.MNIST: 28x28 grey PIL images, or no data."""
    from PIL import Image

    class MNIST:
        def __init__(self, root, train, download):
            if missing:
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            self.root, self.train, self.download = root, train, download
            self.classes = ["0 - zero", "1 - one"]

        def __len__(self):
            return 4

        def __getitem__(self, index):
            return Image.new("L", (28, 28), color=255 * (index % 2)), index % 2

    package = types.ModuleType("torchvision")
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = MNIST
    package.datasets = datasets
    return {"torchvision": package, "torchvision.datasets": datasets}


def _torchvision_spec(tmp_path):
    return spec_with(
        name="digits",
        **{
            "model.type": "cnn",
            "data.source": "torchvision",
            "data.path": str(tmp_path / "mnist"),
            "data.input_shape": (1, 16, 16),
        },
    )


def test_torchvision_images_through_a_stand_in_module(tmp_path, monkeypatch):
    for name, module in _fake_torchvision(missing=False).items():
        monkeypatch.setitem(sys.modules, name, module)
    folder, context = _project(_torchvision_spec(tmp_path), "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "sources") as sources:
        source = sources.read_source(sources.DataConfig())
        white, label = source.dataset[1]
    assert source.labels == ["0 - zero", "1 - one"] and len(source.dataset) == 4
    assert tuple(white.shape) == (1, 16, 16) and label == 1
    assert float(white.min()) == float(white.max()) == 1.0  # (1 - 0.5) / 0.5


def test_torchvision_missing_data_says_how_to_download(tmp_path, monkeypatch):
    for name, module in _fake_torchvision(missing=True).items():
        monkeypatch.setitem(sys.modules, name, module)
    folder, context = _project(_torchvision_spec(tmp_path), "pytorch", tmp_path / "project")
    with project_module(folder, context["package_name"], "sources") as sources:
        expected = pytest.raises(sources.DataError, match="set data.download: true to fetch it")
        with expected:
            sources.read_source(sources.DataConfig())


@pytest.mark.parametrize("style", STYLES)
def test_torchvision_not_installed_is_one_clear_error(style, tmp_path, capsys):
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here; this checks the message without it")
    folder, context = _project(_torchvision_spec(tmp_path), style, tmp_path / style)
    with project_module(folder, context["package_name"]) as train:
        expect_clear_error(
            train,
            ["--accelerator", "cpu", "--fast-dev-run"],
            capsys,
            "needs the torchvision package, which is not installed",
            "pip install -e .[torchvision]",
        )


@pytest.mark.slow
def test_image_folder_projects_own_test_suite_passes(tmp_path):
    """The project's tests draw their own PNGs (Pillow), so they pass before real images exist."""
    import os
    import re
    import subprocess

    spec = spec_with(
        name="own-images",
        **{
            "model.type": "cnn",
            "data.source": "image_folder",
            "data.path": "data/images",
            "data.input_shape": (3, 16, 16),
        },
    )
    folder = write_files(render_project(spec, "pytorch"), tmp_path / "project")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # every test the project ships runs (none skipped for want of data)
    shipped = sum(
        text.count("\ndef test_") for text in (p.read_text() for p in folder.rglob("test_*.py"))
    )
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed >= shipped and "skipped" not in result.stdout, result.stdout  # parametrized: more
