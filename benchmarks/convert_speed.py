"""How long `convert_source` takes on a ~300-line script, and on 10x and 100x larger ones.

    PYTHONPATH=src python benchmarks/convert_speed.py [--repeat 3] [--sizes 300,3000,30000]

The larger inputs are still valid training scripts: more model and helper definitions
around the same single training loop. Prints seconds and time per line for each size, and
each size's time per line relative to the smallest: near 1.0 means linear growth.
The target (issue 3): under 1 s for 300 lines, and linear growth.
"""

from __future__ import annotations

import argparse
import time

HEADER = '''\
"""Benchmark input: a training script with {blocks} model/helper blocks."""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
'''

BLOCK = '''

class Block{i}(nn.Module):
    """Residual MLP block number {i}."""

    def __init__(self, width=32):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)  # keeps the width

    def forward(self, x):
        return x + torch.relu(self.fc(self.norm(x)))


def scale_features_{i}(x, factor={i}.0):
    # a data helper the converter must keep as it is
    centred = x - x.mean(dim=0, keepdim=True)
    return centred / (centred.std(dim=0, keepdim=True) + 1e-6) * factor
'''

TRAINING = """

class Net(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.inp = nn.Linear(16, width)
        self.blocks = nn.Sequential(Block0(width), Block1(width))
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        return self.out(self.blocks(torch.relu(self.inp(x))))


def train(model, loader, optimizer, device, epoch):
    model.train()
    for step, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 10 == 0:
            print(f"epoch {epoch} step {step} loss {loss.item():.4f}")


def evaluate(model, loader, device):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(loader.dataset)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = scale_features_0(torch.randn(512, 16))
    y = torch.randint(0, 4, (512,))
    train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=64)
    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(args.epochs):
        train(model, train_loader, optimizer, device, epoch)
        print(f"val accuracy {evaluate(model, val_loader, device):.3f}")
        scheduler.step()
    torch.save(model.state_dict(), "net.pt")


if __name__ == "__main__":
    main()
"""


def build_script(target_lines: int) -> str:
    """A valid training script of about target_lines lines (at least two blocks)."""
    fixed = len(HEADER.splitlines()) + len(TRAINING.splitlines())
    per_block = len(BLOCK.format(i=0).splitlines())
    blocks = max(2, round((target_lines - fixed) / per_block))
    body = "".join(BLOCK.format(i=i) for i in range(blocks))
    return HEADER.format(blocks=blocks) + body + TRAINING


def time_conversion(source: str, repeat: int) -> float:
    from torch_scaffold.convert import convert_source

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = convert_source(source, "bench.py")
        best = min(best, time.perf_counter() - start)
    if result.code is None:
        reasons = "; ".join(e.text for e in result.refusals)
        raise SystemExit(f"the benchmark script was not converted: {reasons}")
    compile(result.code, "bench_lightning.py", "exec")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per size")
    parser.add_argument("--sizes", default="300,3000,30000", help="target line counts")
    args = parser.parse_args()

    time_conversion(build_script(300), 1)  # warm-up: imports of libcst and black
    rows = []
    for target in (int(s) for s in args.sizes.split(",")):
        source = build_script(target)
        lines = len(source.splitlines())
        seconds = time_conversion(source, args.repeat if target <= 3000 else 1)
        rows.append((lines, seconds))

    base_lines, base_seconds = rows[0]
    base_per_line = base_seconds / base_lines
    print(
        f"{'lines':>7} {'seconds':>9} {'ms/line':>8} {'x lines':>8} {'x time':>8} {'per-line ratio':>15}"
    )
    for lines, seconds in rows:
        print(
            f"{lines:>7} {seconds:>9.3f} {1000 * seconds / lines:>8.3f} {lines / base_lines:>8.1f}"
            f" {seconds / base_seconds:>8.1f} {seconds / lines / base_per_line:>15.2f}"
        )


if __name__ == "__main__":
    main()
