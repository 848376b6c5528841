"""A stand-in for torchvision, for benchmarks/real_corpus.py only.

The real torchvision is not importable here and nothing may be downloaded, so the datasets
are small deterministic synthetic images of the real shapes, and the random transforms are
deterministic (they draw nothing from the RNG, so they cannot shift a script's random stream).
"""
from . import datasets, models, transforms, utils  # noqa: F401

__version__ = "0.0+real-corpus-shim"
