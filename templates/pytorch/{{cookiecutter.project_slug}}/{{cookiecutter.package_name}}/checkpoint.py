"""Checkpoint files: written atomically, read with a clear error when unusable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

REQUIRED_KEYS = ("model", "optimizer", "epoch", "global_step")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`.

    A run killed mid-save leaves the previous checkpoint intact, never a torn file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    try:
        # weights_only: tensors and plain containers only, so a checkpoint cannot run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as err:  # torch raises many types for torn or foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this project (missing {missing})")
    return state
