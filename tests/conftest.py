"""Settings shared by every test folder."""

import os

import pytest
from hypothesis import settings

# CI must be reproducible: the same drawn examples on every run. HYPOTHESIS_PROFILE=explore
# draws fresh ones (run it when changing the spec schema, the generator or the converter).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `full` (the exhaustive variants) run only when asked for with -m full."""
    if "full" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="exhaustive variant; run with -m full")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    """The on-disk cache (formatted code, compiled templates) of this test session only, so a
    stale user cache can never hide a template change (each entry is keyed by its input
    anyway) and tests leave nothing in the home folder."""
    if "TORCH_SCAFFOLD_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["TORCH_SCAFFOLD_CACHE_DIR"] = tempfile.mkdtemp(prefix="scaffold-test-cache-")
