"""Binary classification of synthetic tabular records, trained for a fixed number of steps.

The loop is `while step < max_steps` over an endless iterator of batches; every
`eval_every` steps the validation loss drives ReduceLROnPlateau and the best model is
saved. A final evaluation on held-out data prints accuracy and writes results.txt.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

MAX_STEPS = 150
EVAL_EVERY = 30


def make_records(n, generator):
    """Ten numeric columns; the label depends on an interaction of four of them."""
    x = torch.randn(n, 10, generator=generator)
    logits = 1.5 * x[:, 0] * x[:, 1] - x[:, 2] + 0.8 * torch.relu(x[:, 3]) - 0.3
    y = (torch.sigmoid(logits) > torch.rand(n, generator=generator)).float()
    return x, y


class RecordClassifier(nn.Module):
    def __init__(self, in_features=10, hidden=48):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x):
        return self.net(x).squeeze(-1)


def forever(loader):
    while True:
        yield from loader


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += F.binary_cross_entropy_with_logits(logits, y, reduction="sum").item()
        correct += ((logits > 0).float() == y).sum().item()
        total += len(y)
    model.train()
    return loss_sum / total, correct / total


def main():
    torch.manual_seed(99)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y = make_records(3000, torch.Generator().manual_seed(99))
    train_loader = DataLoader(TensorDataset(x[:2400], y[:2400]), batch_size=64, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[2400:2700], y[2400:2700]), batch_size=300)
    test_loader = DataLoader(TensorDataset(x[2700:], y[2700:]), batch_size=300)

    model = RecordClassifier().to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)

    batches = forever(train_loader)
    step, best_val = 0, float("inf")
    model.train()
    while step < MAX_STEPS:
        x_batch, y_batch = next(batches)
        x_batch, y_batch = x_batch.to(device), y_batch.to(device)
        loss = F.binary_cross_entropy_with_logits(model(x_batch), y_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1

        if step % EVAL_EVERY == 0:
            val_loss, val_acc = evaluate(model, val_loader, device)
            scheduler.step(val_loss)
            print(f"step {step}: loss {loss.item():.4f} val loss {val_loss:.4f} acc {val_acc:.3f}")
            if val_loss < best_val:
                best_val = val_loss
                torch.save(model.state_dict(), "record_classifier_best.pt")

    test_loss, test_acc = evaluate(model, test_loader, device)
    print(f"test loss {test_loss:.4f} accuracy {test_acc:.3f}")
    with open("results.txt", "w") as f:
        f.write(f"test_loss={test_loss:.6f}\ntest_accuracy={test_acc:.6f}\n")


if __name__ == "__main__":
    main()
