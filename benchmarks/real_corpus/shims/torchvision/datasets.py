"""Synthetic datasets with torchvision's interface: the real shapes, few samples, no download.

Each dataset draws its images from its own numpy generator (seeded by its name and split), so
building one never touches torch's, numpy's or random's global state.
"""
import os
import zlib

import numpy as np
import torch
from PIL import Image

# Small on purpose: a whole epoch must take well under a second on one CPU thread.
TRAIN_LEN = int(os.environ.get("FAKE_TORCHVISION_TRAIN_LEN", 256))
TEST_LEN = int(os.environ.get("FAKE_TORCHVISION_TEST_LEN", 128))


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


class _ImageDataset(torch.utils.data.Dataset):
    shape = (28, 28)  # H, W (and C last for colour)
    num_classes = 10

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False,
                 split=None, **kwargs):
        if split is not None:
            train = split in ("train", "training", "unlabeled", "extra")
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        n = getattr(self, "length", (TRAIN_LEN, TEST_LEN))[0 if train else 1]
        g = _rng(type(self).__name__, train)
        self.targets = torch.from_numpy(g.integers(0, self.num_classes, n)).long()
        # a class-dependent mean, so that a model can learn something
        base = g.integers(0, 256, (n,) + self.shape).astype(np.float32)
        shift = (self.targets.numpy().reshape((n,) + (1,) * len(self.shape)) * 12.0)
        self.data = torch.from_numpy(((base * 0.6 + shift) % 256).astype(np.uint8))
        self.classes = [str(i) for i in range(self.num_classes)]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    # the attribute names of older torchvision releases, which old tutorials read
    @property
    def train_data(self):
        return self.data

    @property
    def test_data(self):
        return self.data

    @property
    def train_labels(self):
        return self.targets

    @property
    def test_labels(self):
        return self.targets

    def __len__(self):
        return len(self.data)

    def _image(self, a):
        return Image.fromarray(a, mode="L" if a.ndim == 2 else "RGB")

    def __getitem__(self, i):
        img, target = self._image(self.data[i].numpy()), int(self.targets[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class MNIST(_ImageDataset):
    pass


class FashionMNIST(_ImageDataset):
    pass


class KMNIST(_ImageDataset):
    pass


class EMNIST(_ImageDataset):
    def __init__(self, root=None, split="balanced", train=True, **kwargs):
        super().__init__(root, train=train, **kwargs)


class _ColourDataset(_ImageDataset):
    shape = (32, 32, 3)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = self.data.numpy()  # CIFAR keeps a numpy array, and its targets as a list
        self.targets = self.targets.tolist()

    def __getitem__(self, i):
        img, target = self._image(self.data[i]), int(self.targets[i])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


class CIFAR10(_ColourDataset):
    pass


class CIFAR100(_ColourDataset):
    num_classes = 100


class SVHN(_ColourDataset):
    pass


class STL10(_ColourDataset):
    shape = (96, 96, 3)


class ImageFolder(_ColourDataset):
    shape = (64, 64, 3)
    num_classes = 2
    length = (64, 32)  # train, val: fewer, as the scripts resize them up to 224x224

    def __init__(self, root=None, transform=None, target_transform=None, **kwargs):
        super().__init__(root, train=os.path.basename(str(root).rstrip("/")) != "val",
                         transform=transform, target_transform=target_transform)
        self.samples = [(f"{root}/{t}/{i}.jpg", t) for i, t in enumerate(self.targets)]
        self.imgs = self.samples
