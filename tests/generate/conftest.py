import os
from pathlib import Path

import pytest

# Training in tests: one thread, as the timings assume (set before torch loads).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def torch_one_thread():
    import torch

    torch.set_num_threads(1)
    return torch


def pytest_collection_modifyitems(config, items):
    """`full` tests here (the whole pairwise set) run only when asked for with -m full."""
    if "full" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="exhaustive variant; run with -m full")
    here = Path(__file__).parent
    for item in items:
        if "full" in item.keywords and here in Path(item.fspath).parents:
            item.add_marker(skip)
