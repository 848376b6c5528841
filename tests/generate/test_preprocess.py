"""Preprocessing that travels with the model (issue 15): the input scaler fitted on the
training split, regression targets scaled back inside the model, missing values, class
weights, and one clear error for bad tables.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from torch_scaffold.errors import SpecError
from torch_scaffold.generate import build_context, render_project
from torch_scaffold.spec import load_spec_text

from .datafiles import csv_data, npz_data
from .helpers import (
    expect_clear_error,
    fit_args,
    project_module,
    spec_with,
    train_losses,
    write_files,
)

STYLES = ("pytorch", "lightning")


def _project(spec, style, folder):
    return (
        write_files(render_project(spec, style), folder),
        build_context(spec, style)["package_name"],
    )


def _fitted(folder, package, argv=()):
    """(splits, a model fitted as train.py fits it, preprocess module) of a generated project."""
    with project_module(folder, package, "config") as config_module:
        config = config_module.load_config(fit_args(config_module, list(argv)))
        data = __import__(f"{package}.data", fromlist=["load_splits"])
        model_module = __import__(f"{package}.model", fromlist=["build_model"])
        preprocess = __import__(f"{package}.preprocess", fromlist=["fit_preprocessing"])
        splits = data.load_splits(config)
        torch.manual_seed(0)
        model = model_module.build_model(config.model, splits.input_shape, splits.num_outputs)
        preprocess.fit_preprocessing(model, splits.train, config.data)
        fresh = model_module.build_model(config.model, splits.input_shape, splits.num_outputs)
        return splits, model, fresh, preprocess, config


def _table(path):
    rows = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=str)
    return rows[:, :-1].astype("float32"), rows[:, -1]


@pytest.mark.parametrize("style", STYLES)
def test_scaler_is_fitted_on_the_training_rows_and_travels_in_the_state_dict(
    style, tmp_path, torch_one_thread
):
    spec = spec_with(name="scaled", task="regression", **csv_data(tmp_path, "regression"))
    folder, package = _project(spec, style, tmp_path / style)
    splits, model, fresh, _, _ = _fitted(folder, package)
    features, targets = _table(tmp_path / "table.csv")
    train = np.array(splits.train.indices)
    assert 0 < len(train) < len(features)
    train_rows = features[train]
    scaler = model.scaler
    assert torch.allclose(scaler.shift, torch.tensor(train_rows.mean(0)), atol=1e-5)
    assert torch.allclose(scaler.scale, torch.tensor(train_rows.std(0)), atol=1e-5)
    # not the statistics of every row (validation and test rows are never looked at)
    assert not torch.allclose(scaler.shift, torch.tensor(features.mean(0)), atol=1e-5)
    train_targets = targets[train].astype("float32")
    assert float(model.target_scaler.shift) == pytest.approx(train_targets.mean(), abs=1e-4)
    assert float(model.target_scaler.scale) == pytest.approx(train_targets.std(), abs=1e-4)
    # the model on raw rows is the network on standardized rows, scaled back to target units
    model.eval()
    raw = torch.tensor(features[:5])
    standardized = (raw - torch.tensor(train_rows.mean(0))) / torch.tensor(train_rows.std(0))
    expected = model.network(standardized) * train_targets.std() + train_targets.mean()
    assert torch.allclose(model(raw), expected, atol=1e-4)
    # a fresh model loading the state dict (as test, predict and export do) gets the statistics
    keys = set(model.state_dict())
    assert {"scaler.shift", "scaler.scale", "target_scaler.shift", "target_scaler.scale"} <= keys
    assert not torch.equal(fresh.scaler.shift, scaler.shift)
    fresh.load_state_dict(model.state_dict())
    for name, buffer in model.named_buffers():
        assert torch.equal(dict(fresh.named_buffers())[name], buffer)


def test_images_in_npz_get_one_statistic_per_channel(tmp_path, torch_one_thread):
    spec = spec_with(
        name="npz-images",
        **{**npz_data(tmp_path, images=True), "model.type": "cnn", "data.input_shape": (1, 8, 8)},
    )
    folder, package = _project(spec, "pytorch", tmp_path / "p")
    splits, model, _, _, _ = _fitted(folder, package)
    inputs = splits.train.dataset.tensors[0][torch.tensor(splits.train.indices)]
    assert model.scaler.shift.shape == (1, 1, 1)
    assert float(model.scaler.shift) == pytest.approx(float(inputs.mean()), abs=1e-5)
    assert float(model.scaler.scale) == pytest.approx(float(inputs.std(correction=0)), abs=1e-5)


def test_normalize_none_leaves_no_scaler_in_the_project(tmp_path):
    spec = spec_with(name="raw", **csv_data(tmp_path, write=False), **{"data.normalize": "none"})
    files = render_project(spec, "pytorch")
    assert not any(path.endswith("preprocess.py") for path in files)
    leftovers = ("Preprocessed", "FeatureScaler", "normalize:", "config.normalize")
    assert not any(word in text for text in files.values() for word in leftovers)


@pytest.mark.parametrize("method", ["mean", "median"])
def test_missing_values_are_filled_with_the_training_split_value(
    method, tmp_path, torch_one_thread
):
    path = tmp_path / "holes.csv"
    values = [[1.0, 10.0], [2.0, 30.0], [4.0, 20.0], [8.0, 40.0], [16.0, 90.0]] * 4
    lines = ["a,b,label"] + [f"{a},{b},{i % 2}" for i, (a, b) in enumerate(values)]
    lines[3] = "NA,,1"  # row 3: both features missing
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = spec_with(
        name="holes",
        task="binary",
        **{"data.source": "csv", "data.path": str(path), "data.target": "label"},
        **{"data.missing": method},
    )
    folder, package = _project(spec, "pytorch", tmp_path / "p")
    splits, model, _, _, _ = _fitted(folder, package)
    train = splits.train.dataset.tensors[0][torch.tensor(splits.train.indices)].numpy()
    reduce = np.nanmean if method == "mean" else np.nanmedian
    expected_fill = reduce(train, axis=0)
    if method == "median":  # torch's median of an even count is the lower middle value
        expected_fill = np.array(
            [np.sort(c[~np.isnan(c)])[(len(c[~np.isnan(c)]) - 1) // 2] for c in train.T]
        )
    assert np.allclose(model.scaler.fill.numpy(), expected_fill)
    assert math.isnan(float(splits.train.dataset.tensors[0][2, 0]))  # the data keeps the hole
    filled = np.where(np.isnan(train), expected_fill, train)
    assert np.allclose(model.scaler.shift.numpy(), filled.mean(0), atol=1e-5)
    assert torch.isfinite(model(torch.tensor([[math.nan, math.nan]]))).all()


def test_class_weights_are_balanced_over_the_training_split(tmp_path, torch_one_thread, capsys):
    spec = spec_with(name="weighted", **csv_data(tmp_path), **{"data.class_weights": "balanced"})
    folder, package = _project(spec, "pytorch", tmp_path / "p")
    splits, _, _, preprocess, config = _fitted(folder, package)
    labels = splits.train.dataset.tensors[1][torch.tensor(splits.train.indices)]
    counts = torch.bincount(labels, minlength=3)
    weights = preprocess.class_weights(config.data, splits.train, splits.num_outputs)
    assert torch.allclose(weights, len(labels) / (3 * counts.float()))
    shown = " ".join(f"{i}={int(n)}" for i, n in enumerate(counts))
    assert f"class counts (training split): {shown}; class weights:" in capsys.readouterr().out

    binary = spec_with(
        name="weighted-binary",
        task="binary",
        **csv_data(tmp_path / "b", "binary", write=False),
        **{"data.class_weights": "balanced"},
    )
    (tmp_path / "b").mkdir()
    csv_data(tmp_path / "b", "binary")
    folder, package = _project(binary, "pytorch", tmp_path / "pb")
    splits, _, _, preprocess, config = _fitted(folder, package)
    labels = splits.train.dataset.tensors[1][torch.tensor(splits.train.indices)].float()
    pos_weight = preprocess.class_weights(config.data, splits.train, splits.num_outputs)
    positives = float(labels.sum())
    assert pos_weight.tolist() == pytest.approx([(len(labels) - positives) / positives])
    # switched off in config.yaml: no weights
    _, _, _, preprocess, config = _fitted(folder, package, ["--set", "data.class_weights=none"])
    assert preprocess.class_weights(config.data, splits.train, splits.num_outputs) is None


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_bad_tables_get_one_error_line_naming_file_column_and_row(
    tmp_path, capsys, torch_one_thread
):
    spec = spec_with(name="bad-tables", **csv_data(tmp_path))
    folder, package = _project(spec, "pytorch", tmp_path / "p")
    good = [f"{i},{i * i % 7},{'ab'[i % 2]}" for i in range(40)]
    cases = {
        "text.csv": (
            ["f0,f1,label", *good[:5], "3,abc,a", *good[5:]],
            ["text.csv:7", "'f1'", "'abc'", "not a number"],
        ),
        "empty.csv": (
            ["f0,f1,label", *good[:2], ",1,a", *good],
            ["empty.csv:4", "'f0'", "no value"],
        ),
        "no_target.csv": (
            ["f0,f1,y", *good],
            ["no_target.csv", "no target column 'label'", "f0, f1, y"],
        ),
        "constant.csv": (
            ["f0,f1,f2,label", *[f"{r.rsplit(',', 1)[0]},5,{r[-1]}" for r in good]],
            ["constant.csv", "column 'f2' is constant", "5"],
        ),
    }
    hints = {
        "empty.csv": "fill it in, or set data.missing: drop to leave such rows out (a spec with"
        " data.missing: mean or median fills features from the training split)",
        "no_target.csv": "set data.target to the name of the column to predict",
    }
    with project_module(folder, package) as train:
        for name, (lines, needles) in cases.items():
            path = _write(tmp_path / name, lines)
            argv = [
                "--accelerator",
                "cpu",
                "--set",
                f"data.path={path}",
                "--output-dir",
                str(tmp_path / "out"),
            ]
            expect_clear_error(train, argv, capsys, *needles, hint=hints.get(name))
        # data.missing: drop leaves the row out instead
        path = _write(tmp_path / "drop.csv", ["f0,f1,label", *good[:2], ",1,a", *good])
        argv = ["--accelerator", "cpu", "--max-epochs", "1", "--set", f"data.path={path}"]
        argv += ["--set", "data.missing=drop", "--output-dir", str(tmp_path / "out")]
        train.main(argv)
        assert "data.missing drop: left out 1 of 43 rows" in capsys.readouterr().out


def test_npz_nan_is_an_error_naming_the_array_and_row(tmp_path, capsys, torch_one_thread):
    npz = npz_data(tmp_path)
    arrays = dict(np.load(npz["data.path"]))
    arrays["inputs"][17, 2] = np.nan
    np.savez(npz["data.path"], **arrays)
    folder, package = _project(spec_with(name="holes-npz", **npz), "pytorch", tmp_path / "p")
    with project_module(folder, package) as train:
        argv = ["--accelerator", "cpu", "--output-dir", str(tmp_path / "out")]
        expect_clear_error(train, argv, capsys, "arrays.npz array 'inputs'", "row 17", "NaN")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"data.source": "synthetic", "data.normalize": "minmax"}, "applies to csv, npz and npy"),
        ({"task": "regression", "data.class_weights": "balanced"}, "has none"),
    ],
)
def test_spec_rules(changes, needle):
    lines = ["name: rules"] + [
        f"{k.split('.')[-1]}: {v}" for k, v in changes.items() if "." not in k
    ]
    data = {k.split(".")[1]: v for k, v in changes.items() if k.startswith("data.")}
    text = "\n".join(lines) + "\ndata:\n" + "".join(f"  {k}: {v}\n" for k, v in data.items())
    with pytest.raises(SpecError, match=needle):
        load_spec_text(text, "spec.yaml")


@pytest.mark.slow
def test_both_styles_train_alike_with_preprocessing_and_weights(tmp_path, torch_one_thread):
    """Style parity with the scaler, mean filling and class weights on; the checkpoint of
    each style holds the statistics of the training split."""
    path = tmp_path / "table.csv"
    csv_data(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = "," + lines[5].split(",", 1)[1]  # one missing cell
    path.write_text("\n".join(lines) + "\n")
    spec = spec_with(
        name="parity-preprocess",
        **csv_data(tmp_path, write=False),
        **{"data.missing": "mean", "data.class_weights": "balanced", "data.batch_size": 32},
    )
    traces, stats = {}, {}
    for style in STYLES:
        folder, package = _project(spec, style, tmp_path / style)
        argv = ["--accelerator", "cpu", "--max-epochs", "2", "--output-dir", str(folder / "out")]
        traces[style] = train_losses(folder, package, [*argv, "--name", "run"], steps=10_000)
        state = torch.load(folder / "out" / "run" / "checkpoints" / "last.ckpt", weights_only=False)
        weights = state["model"] if style == "pytorch" else state["state_dict"]
        prefix = "" if style == "pytorch" else "model."
        stats[style] = [weights[prefix + f"scaler.{n}"] for n in ("fill", "shift", "scale")]
        # the checkpoint's weights in a fresh model (as test, predict and export load them)
        _, _, fresh, _, _ = _fitted(folder, package)
        fresh.load_state_dict(
            {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
        )
        assert torch.equal(fresh.scaler.shift, stats[style][1])
        assert torch.equal(fresh.scaler.fill, stats[style][0])
    plain, lightning = traces["pytorch"], traces["lightning"]
    assert len(plain) == len(lightning) > 0
    assert max(abs(a - b) for a, b in zip(plain, lightning, strict=True)) <= 1e-6
    assert all(torch.equal(a, b) for a, b in zip(stats["pytorch"], stats["lightning"], strict=True))
    assert float(stats["pytorch"][2].min()) > 0.5  # standard deviations of N(0, 1) columns


def _fake_transforms():
    """A stand-in for torchvision.transforms.v2 (torchvision is not installed here): each
    transform records its arguments; Compose inverts the pixels, so its use is visible."""
    import importlib.machinery
    import types

    def transform(name):
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

        return type(name, (), {"__init__": __init__})

    class Compose:
        def __init__(self, steps):
            self.steps = steps
            self.calls = 0

        def __call__(self, pixels):
            self.calls += 1
            return 1 - pixels

    v2 = types.ModuleType("torchvision.transforms.v2")
    for name in ("RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter"):
        setattr(v2, name, transform(name))
    v2.Compose = Compose
    transforms = types.ModuleType("torchvision.transforms")
    transforms.v2 = v2
    package = types.ModuleType("torchvision")
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    package.transforms = transforms
    return {
        "torchvision": package,
        "torchvision.transforms": transforms,
        "torchvision.transforms.v2": v2,
    }


def test_augmentation_changes_training_images_only(tmp_path, monkeypatch, capsys):
    from .datafiles import image_folder_data

    image_folder_data(tmp_path, per_class=4, size=(8, 8))
    spec = spec_with(
        name="augmented",
        **{
            "data.source": "image_folder",
            "data.path": str(tmp_path / "images"),
            "data.input_shape": (3, 8, 8),
            "data.augment": True,
            "data.augment_jitter": 0.3,
            "data.class_weights": "balanced",
            "data.val_split": 0.25,
            "data.test_split": 0.25,
        },
    )
    folder, package = _project(spec, "pytorch", tmp_path / "p")
    for name, module in _fake_transforms().items():
        monkeypatch.setitem(sys.modules, name, module)
    with project_module(folder, package, "config") as config_module:
        config = config_module.load_config(fit_args(config_module, []))
        data = __import__(f"{package}.data", fromlist=["load_splits"])
        sources = __import__(f"{package}.sources", fromlist=["image_to_tensor"])
        preprocess = __import__(f"{package}.preprocess", fromlist=["class_weights"])
        splits = data.load_splits(config)
        augment = splits.train.dataset.augment
        crop, flip, jitter = augment.steps
        assert crop.args == ((8, 8),) and crop.kwargs["scale"] == (0.8, 1.0)
        assert type(flip).__name__ == "RandomHorizontalFlip"
        assert jitter.kwargs == {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3}
        assert splits.val.dataset.augment is None and splits.test.dataset.augment is None
        # validation and test images are the plain, deterministic ones
        from PIL import Image

        def plain(split, position):
            path, _ = split.dataset.files[split.indices[position]]
            with Image.open(path) as image:
                return sources.image_to_tensor(
                    image, [3, 8, 8], split.dataset.mean, split.dataset.std
                )

        for split in (splits.val, splits.test):
            assert torch.equal(split[0][0], split[0][0])
            assert torch.equal(split[0][0], plain(split, 0))
        # training images go through the transforms before normalising
        calls = augment.calls
        inverted = splits.train[0][0]
        assert augment.calls == calls + 1
        mean, std = splits.train.dataset.mean, splits.train.dataset.std
        expected = ((1 - (plain(splits.train, 0) * std + mean)) - mean) / std
        assert torch.allclose(inverted, expected, atol=1e-6)
        # class weights count the training labels without decoding images
        labels = torch.tensor([splits.train.dataset.files[i][1] for i in splits.train.indices])
        weights = preprocess.class_weights(config.data, splits.train, 3)
        counts = torch.bincount(labels, minlength=3).clamp(min=1)
        assert torch.allclose(weights, len(labels) / (3 * counts.float()))
        # switched off in config.yaml: the training split is not augmented
        off = config_module.load_config(fit_args(config_module, ["--set", "data.augment=false"]))
        assert getattr(data.load_splits(off).train.dataset, "augment", None) is None
        # torchvision missing: one clear error
        monkeypatch.setitem(sys.modules, "torchvision", None)
        monkeypatch.setitem(sys.modules, "torchvision.transforms", None)
        monkeypatch.setitem(sys.modules, "torchvision.transforms.v2", None)
        with pytest.raises(sources.DataError, match="data.augment needs the torchvision package"):
            data.load_splits(config)


def test_augment_is_for_images_only():
    with pytest.raises(SpecError, match="transforms images"):
        load_spec_text("name: aug\ndata:\n  augment: true\n", "spec.yaml")


@pytest.mark.parametrize("style", STYLES)
def test_image_statistics_from_the_training_images_live_in_the_model(
    style, tmp_path, torch_one_thread, capsys
):
    from .datafiles import image_folder_data

    image_folder_data(tmp_path, per_class=4, size=(8, 8))
    spec = spec_with(
        name="image-stats",
        **{
            "data.source": "image_folder",
            "data.path": str(tmp_path / "images"),
            "data.input_shape": (3, 8, 8),
            "data.image_mean": None,
            "data.image_std": None,
            "data.val_split": 0.25,
            "data.test_split": 0.25,
            "model.type": "cnn",
        },
    )
    folder, package = _project(spec, style, tmp_path / style)
    assert "image_mean" not in (folder / "config.yaml").read_text().split("#", 1)[0]
    splits, model, fresh, _, _ = _fitted(folder, package)
    train = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    assert 0 <= float(train.min()) and float(train.max()) <= 1  # the data keeps [0, 1] pixels
    mean = train.double().mean(dim=(0, 2, 3))
    std = train.double().std(dim=(0, 2, 3), correction=0)
    assert model.scaler.shift.shape == (3, 1, 1)
    assert torch.allclose(model.scaler.shift.flatten().double(), mean, atol=1e-5)
    assert torch.allclose(model.scaler.scale.flatten().double(), std, atol=1e-5)
    everything = torch.stack([splits.val[0][0], splits.test[0][0], *train])
    assert not torch.allclose(everything.double().mean(dim=(0, 2, 3)), mean, atol=1e-5)
    assert "image mean/std per channel (training split): " in capsys.readouterr().out
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.scaler.shift, model.scaler.shift)


def test_image_mean_and_std_are_computed_together():
    text = "name: half\ndata:\n  source: image_folder\n  path: i\n  image_mean: null\n"
    with pytest.raises(SpecError, match="only one of them is null"):
        load_spec_text(text, "spec.yaml")


@pytest.mark.slow
def test_both_styles_train_alike_on_images_with_computed_statistics(tmp_path, torch_one_thread):
    from .datafiles import image_folder_data

    image_folder_data(tmp_path, per_class=8, size=(8, 8))
    spec = spec_with(
        name="parity-images",
        **{
            "data.source": "image_folder",
            "data.path": str(tmp_path / "images"),
            "data.input_shape": (3, 8, 8),
            "data.image_mean": None,
            "data.image_std": None,
            "data.class_weights": "balanced",
            "data.batch_size": 8,
            "model.type": "cnn",
        },
    )
    traces = {}
    for style in STYLES:
        folder, package = _project(spec, style, tmp_path / style)
        argv = ["--accelerator", "cpu", "--max-epochs", "2", "--output-dir", str(folder / "out")]
        traces[style] = train_losses(folder, package, argv, steps=10_000)
    plain, lightning = traces["pytorch"], traces["lightning"]
    assert len(plain) == len(lightning) > 0
    assert max(abs(a - b) for a, b in zip(plain, lightning, strict=True)) <= 1e-6
