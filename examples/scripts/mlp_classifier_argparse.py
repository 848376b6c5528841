"""Classify points on three interleaved spirals with a small MLP.

pytorch/examples style: argparse options, train()/evaluate() functions called from main(),
StepLR stepped once per epoch, a final test pass and an optional saved state_dict.

    python mlp_classifier_argparse.py --epochs 6 --save-model
"""

import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset, random_split


def make_spirals(points_per_class, classes, noise, generator):
    """Points on `classes` spiral arms, labelled by arm, with Gaussian jitter."""
    xs, ys = [], []
    for arm in range(classes):
        radius = torch.linspace(0.05, 1.0, points_per_class)
        angle = radius * 4.0 + arm * 2.0 * math.pi / classes
        angle = angle + noise * torch.randn(points_per_class, generator=generator)
        xs.append(torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1))
        ys.append(torch.full((points_per_class,), arm, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


class SpiralMLP(nn.Module):
    def __init__(self, hidden=64, classes=3, dropout=0.1):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.head(x)


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (points, labels) in enumerate(train_loader):
        points, labels = points.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(points)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(
                f"Train epoch {epoch} [{batch_idx * len(points)}/{len(train_loader.dataset)}]"
                f"\tloss {loss.item():.4f}"
            )
            if args.dry_run:
                break


def evaluate(model, device, loader, split="val"):
    model.eval()
    total_loss = 0.0
    correct = 0
    with torch.no_grad():
        for points, labels in loader:
            points, labels = points.to(device), labels.to(device)
            logits = model(points)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
    count = len(loader.dataset)
    print(f"{split}: average loss {total_loss / count:.4f}, accuracy {correct}/{count}")
    return total_loss / count, correct / count


def main():
    parser = argparse.ArgumentParser(description="Spiral MLP classifier")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--test-batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--gamma", type=float, default=0.5, help="StepLR decay factor")
    parser.add_argument("--step-size", type=int, default=2, help="epochs between LR decays")
    parser.add_argument("--no-cuda", action="store_true", default=False)
    parser.add_argument("--dry-run", action="store_true", default=False)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--save-model", action="store_true", default=False)
    args = parser.parse_args()

    use_cuda = not args.no_cuda and torch.cuda.is_available()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if use_cuda else "cpu")

    points, labels = make_spirals(400, 3, 0.15, torch.Generator().manual_seed(args.seed))
    dataset = TensorDataset(points, labels)
    train_set, val_set, test_set = random_split(
        dataset, [840, 180, 180], generator=torch.Generator().manual_seed(0)
    )
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=args.test_batch_size)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = SpiralMLP().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)

    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        evaluate(model, device, val_loader, "val")
        scheduler.step()

    evaluate(model, device, test_loader, "test")
    if args.save_model:
        torch.save(model.state_dict(), "spiral_mlp.pt")


if __name__ == "__main__":
    main()
