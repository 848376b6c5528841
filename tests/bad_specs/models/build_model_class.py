from torch import nn


class build_model(nn.Module):  # noqa: N801
    def forward(self, x):
        return x
