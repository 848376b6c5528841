"""Small, learnable data files for the data-source tests: csv, npz, npy, an image folder, text.

Each writer returns the spec overrides (dotted path -> value) that point a spec at its files,
so a test can combine them with any other option: `spec_with(**csv_data(folder))`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROWS = 240
FEATURES = 6


def _tabular(features: int = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((ROWS, features)).astype("float32")
    teacher = rng.standard_normal((features, 3))
    return inputs, (inputs @ teacher).argmax(axis=1)


def csv_data(folder: Path, task: str = "classification", write: bool = True) -> dict:
    """Feature columns f0..f5 and a text label column (cat/dog/fox) or a numeric target."""
    path = folder / "table.csv"
    overrides = {"data.source": "csv", "data.path": str(path), "data.target": "label"}
    if not write:
        return overrides
    inputs, classes = _tabular()
    names = np.array(["cat", "dog", "fox"])
    header = [f"f{i}" for i in range(FEATURES)]
    lines = [",".join([*header, "label"])]
    for row, label in zip(inputs, classes, strict=True):
        if task == "classification":
            target = names[label]
        elif task == "binary":
            target = str(int(label == 0))
        else:
            target = f"{row[:2].sum():.5f}"
        lines.append(",".join([*(f"{v:.5f}" for v in row), str(target)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return overrides


def _arrays(task: str, images: bool, sequences: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 6 features, (images) 1x8x8 "images" or (sequences) 8 steps of 8 features, with
    class, binary (0/1), multi-label (0/1 per label) or regression targets."""
    inputs, classes = _tabular(64 if images or sequences else FEATURES)
    if task == "classification":
        targets = classes.astype("int64")
    elif task == "binary":
        targets = (classes == 0).astype("float32")[:, None]
    elif task == "multilabel":
        labels = [classes == 0, classes == 1, inputs[:, 0] > 0]
        targets = np.stack(labels, axis=1).astype("float32")
    else:
        targets = inputs[:, :2].sum(axis=1, keepdims=True).astype("float32")
    if images:
        inputs = inputs.reshape(ROWS, 1, 8, 8)
    elif sequences:
        inputs = inputs.reshape(ROWS, 8, 8)
    return inputs, targets


def _prefix(images: bool, sequences: bool) -> str:
    return "images-" if images else "sequences-" if sequences else ""


def npz_data(
    folder: Path,
    task: str = "classification",
    write: bool = True,
    images: bool = False,
    sequences: bool = False,
) -> dict:
    path = folder / (_prefix(images, sequences) + "arrays.npz")
    if write:
        inputs, targets = _arrays(task, images, sequences)
        np.savez(path, inputs=inputs, labels=targets)
    return {
        "data.source": "npz",
        "data.path": str(path),
        "data.features": ("inputs",),
        "data.target": "labels",
    }


def npy_data(
    folder: Path,
    task: str = "classification",
    write: bool = True,
    images: bool = False,
    sequences: bool = False,
) -> dict:
    prefix = _prefix(images, sequences)
    if write:
        inputs, targets = _arrays(task, images, sequences)
        np.save(folder / f"{prefix}x.npy", inputs)
        np.save(folder / f"{prefix}y.npy", targets)
    return {
        "data.source": "npy",
        "data.path": str(folder / f"{prefix}x.npy"),
        "data.targets_path": str(folder / f"{prefix}y.npy"),
    }


def image_folder_data(folder: Path, per_class: int = 16, size: tuple[int, int] = (14, 18)) -> dict:
    """Three classes of RGB PNGs (Pillow), each with its own dominant colour plus noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = folder / "images"
    for index, name in enumerate(["blue", "green", "red"]):
        (root / name).mkdir(parents=True)
        for number in range(per_class):
            pixels = rng.integers(0, 100, size=(size[0], size[1], 3))
            pixels[..., 2 - index] += 150
            Image.fromarray(pixels.astype("uint8")).save(root / name / f"{number}.png")
    (root / "notes.txt").write_text("not a class folder, not an image", encoding="utf-8")
    return {"data.source": "image_folder", "data.path": str(root)}


def text_data(folder: Path, repeats: int = 60) -> dict:
    path = folder / "input.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * repeats, encoding="utf-8")
    return {"data.source": "text", "data.path": str(path)}


FILE_SOURCES = {
    "csv": csv_data,
    "npz": npz_data,
    "npy": npy_data,
    "image_folder": lambda folder, task="classification": image_folder_data(folder),
}
