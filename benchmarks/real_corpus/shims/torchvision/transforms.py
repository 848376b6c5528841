"""Cheap deterministic versions of the transforms training scripts use."""
import numpy as np
import torch
from PIL import Image


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class Lambda:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class ToTensor:
    def __call__(self, pic):
        if isinstance(pic, torch.Tensor):
            return pic
        a = np.array(pic)  # a copy: PIL's buffer is read-only
        if a.ndim == 2:
            a = a[:, :, None]
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
        return t.float().div(255) if t.dtype == torch.uint8 else t.float()


class PILToTensor:
    def __call__(self, pic):
        a = np.asarray(pic)
        if a.ndim == 2:
            a = a[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class ToPILImage:
    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, t):
        if isinstance(t, Image.Image):
            return t
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if a.ndim == 3 and a.shape[0] in (1, 3):
            a = a.transpose(1, 2, 0)
        if a.dtype != np.uint8:
            a = (a * 255).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a)


class Normalize:
    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = mean, std

    def __call__(self, t):
        # torchvision 0.2, which old tutorials were written for, zipped channels with the means:
        # (0.5, 0.5, 0.5) on a 1-channel MNIST image normalised that one channel
        c = t.shape[-3]
        mean = torch.as_tensor(self.mean, dtype=t.dtype).reshape(-1)[:c].view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=t.dtype).reshape(-1)[:c].view(-1, 1, 1)
        return (t - mean) / std


def _size(size):
    return (size, size) if isinstance(size, int) else tuple(size)


class Resize:
    def __init__(self, size, *args, **kwargs):
        self.size = size

    def __call__(self, img):
        if isinstance(img, torch.Tensor):
            hw = _size(self.size)
            return torch.nn.functional.interpolate(img[None].float(), size=hw, mode="bilinear")[0]
        w, h = img.size
        if isinstance(self.size, int):  # the shorter side becomes size, as torchvision does
            s = self.size
            hw = (s, max(1, round(w * s / h))) if h <= w else (max(1, round(h * s / w)), s)
        else:
            hw = tuple(self.size)
        return img.resize((hw[1], hw[0]))


Scale = Resize


class CenterCrop:
    def __init__(self, size, *args, **kwargs):
        self.size = _size(size)

    def __call__(self, img):
        th, tw = self.size
        if isinstance(img, torch.Tensor):
            h, w = img.shape[-2:]
            if h < th or w < tw:
                img = Resize((max(h, th), max(w, tw)))(img)
                h, w = img.shape[-2:]
            top, left = (h - th) // 2, (w - tw) // 2
            return img[..., top:top + th, left:left + tw]
        w, h = img.size
        if h < th or w < tw:
            img = img.resize((max(w, tw), max(h, th)))
            w, h = img.size
        left, top = (w - tw) // 2, (h - th) // 2
        return img.crop((left, top, left + tw, top + th))


class RandomCrop(CenterCrop):
    """Deterministic: the centre crop (after the padding, which keeps the size arithmetic)."""

    def __init__(self, size, padding=None, *args, **kwargs):
        super().__init__(size)
        self.padding = padding

    def __call__(self, img):
        if self.padding:
            img = _pad(img, self.padding if isinstance(self.padding, int) else self.padding[0])
        return super().__call__(img)


class RandomResizedCrop:
    def __init__(self, size, *args, **kwargs):
        self.size = _size(size)

    def __call__(self, img):
        return Resize(self.size)(img)


RandomSizedCrop = RandomResizedCrop


class _Identity:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, x):
        return x


class RandomHorizontalFlip(_Identity):
    """Deterministic: never flips."""


class RandomVerticalFlip(_Identity):
    pass


class RandomRotation(_Identity):
    pass


class RandomAffine(_Identity):
    pass


class ColorJitter(_Identity):
    pass


class RandomApply(_Identity):
    pass


class Grayscale:
    def __init__(self, num_output_channels=1):
        self.n = num_output_channels

    def __call__(self, img):
        g = img.convert("L")
        return g if self.n == 1 else g.convert("RGB")


class Pad:
    def __init__(self, padding, fill=0, *args, **kwargs):
        self.p = padding if isinstance(padding, int) else padding[0]

    def __call__(self, img):
        return _pad(img, self.p)


def _pad(img, p):
    if isinstance(img, torch.Tensor):
        return torch.nn.functional.pad(img, (p, p, p, p))
    a = np.asarray(img)
    pad = ((p, p), (p, p)) + (((0, 0),) if a.ndim == 3 else ())
    return Image.fromarray(np.pad(a, pad))
