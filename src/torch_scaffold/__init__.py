"""torch-scaffold: generate PyTorch / Lightning training projects and convert training scripts."""

__version__ = "0.1.0"
