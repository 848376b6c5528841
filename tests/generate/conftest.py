import os

import pytest

# Training in tests: one thread, as the timings assume (set before torch loads).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def torch_one_thread():
    import torch

    torch.set_num_threads(1)
    return torch
