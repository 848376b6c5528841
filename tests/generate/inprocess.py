"""Running a generated project in this process: import it from its folder, record its losses.

Needs only the standard library and torch (not torch_scaffold), so benchmarks/gpu_parity.py
uses it too on a GPU machine where the projects were generated elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def project_module(project_dir: Path, package: str, module: str = "train"):
    """Import <package>.<module> from a generated project, run from its root; forget it after.

    Several generated projects share package names, so each use purges the
    package from sys.modules and restores sys.path and the working folder.
    """
    cwd = os.getcwd()
    sys.path.insert(0, str(project_dir))
    os.chdir(project_dir)
    try:
        yield importlib.import_module(f"{package}.{module}")
    finally:
        os.chdir(cwd)
        sys.path.remove(str(project_dir))
        for name in list(sys.modules):
            if name == package or name.startswith(package + "."):
                del sys.modules[name]


class EnoughSteps(BaseException):
    """Raised from backward() once enough losses are recorded (not an Exception: nothing swallows it)."""


@contextlib.contextmanager
def record_losses(limit: int):
    """Record every scalar loss passed to Tensor.backward (as losstrace.py does), then stop."""
    import torch

    losses: list[float] = []
    original = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        if self.numel() == 1:
            losses.append(float(self.detach().float()))
        result = original(self, *args, **kwargs)
        if len(losses) >= limit:
            raise EnoughSteps
        return result

    torch.Tensor.backward = backward
    try:
        yield losses
    finally:
        torch.Tensor.backward = original


def train_losses(project_dir: Path, package: str, argv: list[str], steps: int) -> list[float]:
    with project_module(project_dir, package) as train, record_losses(steps) as losses:
        # Guard against a stale import: the code that runs must be this project's.
        assert Path(train.__file__).resolve().is_relative_to(project_dir.resolve())
        try:
            train.main(argv)
        except EnoughSteps:
            pass
    return list(losses)
