"""Seeding, determinism, the device and mixed precision."""

from __future__ import annotations

import contextlib
import os
import random
import warnings

import torch

from .config import ConfigError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (when installed) and torch (CPU and every CUDA device)."""
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read at cuBLAS's first use
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def configure_speed(device: torch.device, deterministic: bool) -> None:
    """GPUs: TF32 matmuls, and cuDNN autotuning unless results must be reproducible."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.benchmark = not deterministic


def select_device(accelerator: str) -> torch.device:
    """auto picks cuda, then mps, then cpu; an explicit choice must be available."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if accelerator == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (accelerator == "cuda" and not cuda) or (accelerator == "mps" and not mps):
        raise ConfigError(f"trainer.accelerator: {accelerator} is not available on this machine")
    return torch.device(accelerator)


def resolve_precision(device: torch.device, precision: str) -> str:
    """fp16 autocast is a GPU feature: on CPU, 16-mixed trains in bf16, as Lightning does."""
    if precision == "16-mixed" and device.type == "cpu":
        message = "precision 16-mixed is not supported on CPU; using bf16-mixed instead"
        warnings.warn(message, stacklevel=2)
        return "bf16-mixed"
    return precision


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for the mixed modes (reusable), a no-op for full precision."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "16-mixed" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling against underflow; bf16 has fp32's range and does not."""
    fp16_on_gpu = precision == "16-mixed" and device.type == "cuda"
    return torch.amp.GradScaler("cuda") if fp16_on_gpu else None
