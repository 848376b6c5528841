"""Shared helpers for the converter tests: where things are, and whether the real core exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "convert"
EXAMPLES = REPO / "examples" / "scripts"
# CI checks out ../shared beside the repository (corpus + losstrace.py).
SHARED = REPO.parent / "shared"

HAS_CORE = importlib.util.find_spec("torch_scaffold.convert.pipeline") is not None
needs_core = pytest.mark.skipif(
    not HAS_CORE, reason="converter core (torch_scaffold.convert.pipeline) not present yet"
)
