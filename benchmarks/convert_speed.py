"""How fast `convert_source` is, and how much memory it needs, on growing scripts.

    PYTHONPATH=src python benchmarks/convert_speed.py [--repeat 3] [--sizes 1000,5000,30000]
                                                      [--memory-lines 30000]

The larger inputs are still valid training scripts: more model and helper definitions
around the same single training loop. Prints, for each size, the CPU seconds and ms per line
(best of --repeat; CPU time, so that other processes on the machine barely move it; wall time
beside it), and each size's ms per line relative to the smallest: near 1.0 (or below, as the
fixed costs spread) means linear growth. Then the memory of one conversion, each in a fresh
interpreter: the peak RSS it adds (libcst's native parser included) and the peak of Python's
own allocations (tracemalloc), both over the parse tree's own size (the Python objects of the
parsed module, tracemalloc). Targets (issue 12): at most 0.3 ms per line with linear growth,
memory under 10x the parse tree's own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

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


def time_conversion(source: str, repeat: int) -> tuple[float, float]:
    """(CPU, wall) seconds of the best of `repeat` conversions of `source`."""
    from torch_scaffold.convert import convert_source

    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = convert_source(source, "bench.py")
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    if result.code is None:
        reasons = "; ".join(e.text for e in result.refusals)
        raise SystemExit(f"the benchmark script was not converted: {reasons}")
    compile(result.code, "bench_lightning.py", "exec")
    return best


def speed(sizes: list[int], repeat: int) -> list[tuple[int, float, float]]:
    """[(lines, CPU seconds, wall seconds)] per target size (best of `repeat`, of 1 above
    10,000 lines)."""
    time_conversion(build_script(300), 1)  # warm-up: imports of libcst and black
    rows = []
    for target in sizes:
        source = build_script(target)
        cpu, wall = time_conversion(source, repeat if target <= 10_000 else 1)
        rows.append((len(source.splitlines()), cpu, wall))
    return rows


def _child(kind: str, lines: int) -> dict:
    """Run one memory measurement in a fresh interpreter (see _measure_in_child)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--memory-lines", str(lines)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status (the memory rows need Linux)")


def _measure_in_child(kind: str, lines: int) -> dict:
    import gc

    from torch_scaffold.convert import convert_source

    convert_source(build_script(300), "warm.py")  # imports, caches
    source = build_script(lines)
    gc.collect()
    if kind == "rss":
        # Linux: reset the peak (VmHWM) to the current RSS, so that the imports' own peak
        # does not hide the conversion's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        convert_source(source, "bench.py")
        return {"rss_bytes": (_status_kib("VmHWM") - before) * 1024}
    import tracemalloc

    import libcst as cst

    tracemalloc.start()
    module = cst.parse_module(source)
    tree = tracemalloc.get_traced_memory()[0]
    del module
    gc.collect()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    convert_source(source, "bench.py")
    peak = tracemalloc.get_traced_memory()[1] - start
    return {"tree_bytes": tree, "traced_peak_bytes": peak, "lines": len(source.splitlines())}


def memory(lines: int) -> dict:
    """Peak RSS growth and tracemalloc peak of one conversion, and the parse tree's size."""
    out = _child("traced", lines)
    out.update(_child("rss", lines))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per size")
    parser.add_argument("--sizes", default="1000,5000,30000", help="target line counts")
    parser.add_argument("--memory-lines", type=int, default=30000, help="0: skip memory")
    parser.add_argument("--child", choices=("rss", "traced"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure_in_child(args.child, args.memory_lines)))
        return

    rows = speed([int(s) for s in args.sizes.split(",")], args.repeat)
    base_lines, base_cpu, _ = rows[0]
    print(f"{'lines':>7} {'CPU s':>8} {'ms/line':>8} {'wall s':>8} {'per-line ratio':>15}")
    for lines, cpu, wall in rows:
        ratio = (cpu / lines) / (base_cpu / base_lines)
        print(f"{lines:>7} {cpu:>8.3f} {1000 * cpu / lines:>8.3f} {wall:>8.3f} {ratio:>15.2f}")
    if args.memory_lines:
        m = memory(args.memory_lines)
        tree = m["tree_bytes"]
        print(
            f"memory, {m['lines']} lines: parse tree {tree / 2**20:.1f} MiB;"
            f" peak RSS added {m['rss_bytes'] / 2**20:.1f} MiB ({m['rss_bytes'] / tree:.1f}x);"
            f" peak Python allocations {m['traced_peak_bytes'] / 2**20:.1f} MiB"
            f" ({m['traced_peak_bytes'] / tree:.1f}x)"
        )


if __name__ == "__main__":
    main()
