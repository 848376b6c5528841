# ruff: noqa: F706  (the top-level return is the point: Python refuses to compile it)
from torch import nn


class Net(nn.Module):
    def forward(self, x):
        return x


return Net
