"""Predict a smooth nonlinear target from 8 features, with gradient accumulation.

Everything runs at module level, the way a notebook gets exported: data, model, optimizer,
then the epoch loop. Small batches of 16 are accumulated 4 at a time into an effective
batch of 64 (the loss is divided by ACCUM_STEPS so the summed gradients average). The
validation MSE of every epoch goes to metrics.json.
"""

import json

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SEED = 11
EPOCHS = 4
BATCH_SIZE = 16
ACCUM_STEPS = 4
LR = 2e-3

torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)

# y = sin(x0) * x1 + 0.5 * x2^2 - x3 + noise; the other features are distractors
features = rng.normal(size=(1600, 8)).astype(np.float32)
target = (
    np.sin(features[:, 0]) * features[:, 1]
    + 0.5 * features[:, 2] ** 2
    - features[:, 3]
    + 0.1 * rng.normal(size=1600)
).astype(np.float32)
x = torch.from_numpy(features)
y = torch.from_numpy(target).unsqueeze(1)
train_ds = TensorDataset(x[:1280], y[:1280])
val_ds = TensorDataset(x[1280:], y[1280:])
train_loader = DataLoader(train_ds, batch_size=BATCH_SIZE, shuffle=True)
val_loader = DataLoader(val_ds, batch_size=128)

device = "cuda" if torch.cuda.is_available() else "cpu"
model = nn.Sequential(
    nn.Linear(8, 64),
    nn.Tanh(),
    nn.Linear(64, 64),
    nn.Tanh(),
    nn.Linear(64, 1),
).to(device)
loss_fn = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=LR)

history = []
for epoch in range(EPOCHS):
    model.train()
    optimizer.zero_grad()
    train_loss = 0.0
    for i, (xb, yb) in enumerate(train_loader):
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb) / ACCUM_STEPS
        loss.backward()
        train_loss += loss.item() * ACCUM_STEPS
        if (i + 1) % ACCUM_STEPS == 0:
            optimizer.step()
            optimizer.zero_grad()

    model.eval()
    val_loss = 0.0
    with torch.no_grad():
        for xb, yb in val_loader:
            xb, yb = xb.to(device), yb.to(device)
            val_loss += loss_fn(model(xb), yb).item() * len(xb)
    train_loss /= len(train_loader)
    val_loss /= len(val_ds)
    history.append({"epoch": epoch, "train_loss": train_loss, "val_mse": val_loss})
    print(f"epoch {epoch}: train {train_loss:.4f}  val mse {val_loss:.4f}")

with open("metrics.json", "w") as f:
    json.dump(history, f, indent=2)
