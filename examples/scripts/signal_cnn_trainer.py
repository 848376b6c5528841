"""Recognise the waveform family of noisy 1-D signals with a small Conv1d network.

A class-based trainer: `SignalTrainer` owns the model, optimizer, cosine LR schedule and
loaders; fit() runs train_epoch() and validate() per epoch, clips gradients by norm, keeps
the best weights by validation accuracy and logs through the `logging` module.
"""

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

log = logging.getLogger("signal_cnn")


@dataclass
class Config:
    seed: int = 3
    length: int = 128
    samples_per_class: int = 240
    batch_size: int = 48
    epochs: int = 5
    lr: float = 3e-3
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    best_path: str = "best_signal_cnn.pt"


def synth_signals(cfg, generator):
    """Sine, square and sawtooth waves with random frequency, phase and noise."""
    t = torch.linspace(0, 1, cfg.length)
    signals, labels = [], []
    for label in range(3):
        freq = 2 + 6 * torch.rand(cfg.samples_per_class, 1, generator=generator)
        phase = 2 * math.pi * torch.rand(cfg.samples_per_class, 1, generator=generator)
        arg = 2 * math.pi * freq * t + phase
        if label == 0:
            wave = torch.sin(arg)
        elif label == 1:
            wave = torch.sign(torch.sin(arg))
        else:
            wave = 2 * torch.frac(arg / (2 * math.pi)) - 1
        noise = 0.4 * torch.randn(cfg.samples_per_class, cfg.length, generator=generator)
        signals.append((wave + noise).unsqueeze(1))
        labels.append(torch.full((cfg.samples_per_class,), label))
    return torch.cat(signals), torch.cat(labels)


class SignalNet(nn.Module):
    def __init__(self, channels=16, classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, kernel_size=7, padding=3),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(channels, 2 * channels, kernel_size=5, padding=2),
            nn.BatchNorm1d(2 * channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )
        self.classifier = nn.Linear(2 * channels, classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class SignalTrainer:
    def __init__(self, model, train_loader, val_loader, cfg):
        self.cfg = cfg
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device)
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=cfg.epochs
        )
        self.best_accuracy = 0.0

    def train_epoch(self, epoch):
        self.model.train()
        running = 0.0
        for step, (signals, labels) in enumerate(self.train_loader):
            signals = signals.to(self.device)
            labels = labels.to(self.device)
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(signals), labels)
            loss.backward()
            # the BatchNorm net is touchy early on: keep updates bounded
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
            self.optimizer.step()
            running += loss.item()
        log.info("epoch %d train loss %.4f", epoch, running / len(self.train_loader))

    @torch.no_grad()
    def validate(self, epoch):
        self.model.eval()
        correct = total = 0
        for signals, labels in self.val_loader:
            signals, labels = signals.to(self.device), labels.to(self.device)
            predictions = self.model(signals).argmax(dim=1)
            correct += (predictions == labels).sum().item()
            total += labels.numel()
        accuracy = correct / total
        log.info("epoch %d val accuracy %.3f", epoch, accuracy)
        return accuracy

    def fit(self):
        for epoch in range(self.cfg.epochs):
            self.train_epoch(epoch)
            accuracy = self.validate(epoch)
            self.scheduler.step()
            if accuracy > self.best_accuracy:
                self.best_accuracy = accuracy
                torch.save(self.model.state_dict(), self.cfg.best_path)
        log.info("best val accuracy %.3f", self.best_accuracy)


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = Config()
    torch.manual_seed(cfg.seed)
    signals, labels = synth_signals(cfg, torch.Generator().manual_seed(cfg.seed))
    order = torch.randperm(len(labels))
    train_idx, val_idx = order[:600], order[600:]
    train_loader = DataLoader(
        TensorDataset(signals[train_idx], labels[train_idx]),
        batch_size=cfg.batch_size,
        shuffle=True,
    )
    val_loader = DataLoader(
        TensorDataset(signals[val_idx], labels[val_idx]), batch_size=cfg.batch_size
    )
    trainer = SignalTrainer(SignalNet(), train_loader, val_loader, cfg)
    trainer.fit()


if __name__ == "__main__":
    main()
