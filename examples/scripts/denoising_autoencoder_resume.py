"""A convolutional denoising autoencoder for synthetic 16x16 blob images, resumable.

Every epoch writes a checkpoint dict (model, optimizer, scheduler, epoch, best validation
loss) to --checkpoint; `--resume` picks it up again and continues from the next epoch.
The best weights by validation loss are kept in denoiser_best.pt.

    python denoising_autoencoder_resume.py --epochs 3
    python denoising_autoencoder_resume.py --epochs 5 --resume
"""

import argparse
import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def blob_images(count, size, generator):
    """Each image holds 1-3 Gaussian blobs of random position, width and brightness."""
    grid = torch.stack(
        torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"), dim=-1
    ).float()
    images = torch.zeros(count, 1, size, size)
    for i in range(count):
        blobs = int(torch.randint(1, 4, (1,), generator=generator))
        for _ in range(blobs):
            center = torch.rand(2, generator=generator) * size
            width = 1.0 + 2.5 * torch.rand(1, generator=generator)
            brightness = 0.5 + 0.5 * torch.rand(1, generator=generator)
            dist2 = ((grid - center) ** 2).sum(-1)
            images[i, 0] += brightness * torch.exp(-dist2 / (2 * width**2))
    return images.clamp(0, 1)


class DenoisingAE(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),  # 8 -> 4
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # 4 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 8 -> 16
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument("--checkpoint", default="denoiser_checkpoint.pt")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--seed", type=int, default=2024)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    images = blob_images(768, 16, torch.Generator().manual_seed(args.seed))
    train_loader = DataLoader(TensorDataset(images[:640]), batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(images[640:]), batch_size=128)

    model = DenoisingAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.3)
    criterion = nn.BCELoss()

    start_epoch, best_val = 0, float("inf")
    if args.resume and os.path.exists(args.checkpoint):
        state = torch.load(args.checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val = state["epoch"] + 1, state["best_val"]
        print(f"resumed from epoch {state['epoch']}")

    for epoch in range(start_epoch, args.epochs):
        model.train()
        for (clean,) in train_loader:
            clean = clean.to(device)
            noisy = (clean + args.noise * torch.randn_like(clean)).clamp(0, 1)
            optimizer.zero_grad()
            loss = criterion(model(noisy), clean)
            loss.backward()
            optimizer.step()
        scheduler.step()

        model.eval()
        val_loss = 0.0
        with torch.no_grad():
            for (clean,) in val_loader:
                clean = clean.to(device)
                noisy = (clean + args.noise * torch.randn_like(clean)).clamp(0, 1)
                val_loss += criterion(model(noisy), clean).item() * len(clean)
        val_loss /= len(val_loader.dataset)
        print(f"epoch {epoch}: val bce {val_loss:.4f}")

        if val_loss < best_val:
            best_val = val_loss
            torch.save(model.state_dict(), "denoiser_best.pt")
        torch.save(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_val": best_val,
            },
            args.checkpoint,
        )


if __name__ == "__main__":
    main()
