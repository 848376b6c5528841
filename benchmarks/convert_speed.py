"""Conversion time for a ~300-line script and for one 10x larger: prints seconds and the ratio.

    PYTHONPATH=src python benchmarks/convert_speed.py [SCRIPT]

The larger file is the same script with more model classes and helper functions (one
training loop either way), so a ratio near 10 means time grows linearly with size.
Run on an idle machine: the numbers are wall-clock seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torch_scaffold.convert import convert_source

BASE = """
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
"""

LOOP = """

def train(model, loader, optimizer, device):
    model.train()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def main():
    torch.manual_seed(0)
    device = torch.device("cpu")
    loader = DataLoader(TensorDataset(torch.randn(64, 8), torch.randn(64, 8)), batch_size=16)
    model = Block0().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    for epoch in range(3):
        train(model, loader, optimizer, device)
        scheduler.step()


if __name__ == "__main__":
    main()
"""

BLOCK = '''

class Block{i}(nn.Module):
    """Padding block {i}: a residual MLP."""

    def __init__(self, width=8):
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(h) + x


def helper_{i}(values, scale=2.0):
    # a small pure-Python helper, as real scripts have
    out = []
    for v in values:
        if v > 0:
            out.append(v * scale)
        else:
            out.append(-v)
    return sum(out) / max(len(out), 1)
'''


def script(blocks: int) -> str:
    return BASE + "".join(BLOCK.format(i=i) for i in range(blocks)) + LOOP


def best_time(source: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = convert_source(source, "bench.py")
        times.append(time.perf_counter() - start)
        assert result.code is not None, [e.render() for e in result.refusals]
    return min(times)


def main() -> None:
    if len(sys.argv) > 1:
        small = Path(sys.argv[1]).read_text()
        large = small + "".join(
            BLOCK.format(i=1000 + i) for i in range(small.count("\n") // 25 * 9)
        )
    else:
        small, large = script(11), script(120)
    convert_source(small, "warmup.py")
    t_small, t_large = best_time(small), best_time(large)
    n_small, n_large = small.count("\n"), large.count("\n")
    print(f"{n_small} lines: {t_small:.3f} s")
    print(f"{n_large} lines: {t_large:.3f} s")
    print(f"size ratio {n_large / n_small:.1f}x, time ratio {t_large / t_small:.1f}x")


if __name__ == "__main__":
    main()
