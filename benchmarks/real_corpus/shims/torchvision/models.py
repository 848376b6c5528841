"""Small stand-ins for torchvision.models: the attribute names scripts touch (fc, classifier)."""
import torch.nn as nn


class _TinyResNet(nn.Module):
    def __init__(self, num_classes=1000, **kwargs):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def resnet18(pretrained=False, weights=None, **kwargs):
    return _TinyResNet(**kwargs)


resnet34 = resnet50 = resnet18


class _Unavailable:
    """What any other name resolves to: libraries that probe torchvision (torchmetrics imports
    `VGG16_Weights` at import time) import fine, and using one fails loudly."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("not in the real-corpus torchvision shim")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Unavailable
