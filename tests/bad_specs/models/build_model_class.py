from torch import nn


class build_model(nn.Module):
    def forward(self, x):
        return x
