"""A forward with a data-dependent ``if``: torch.fx cannot trace it, so shapecalc runs the
forward once at the requested input and records its modules with hooks (the header says so)."""

from torch import nn


class EarlyExit(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv(x)
        if x.abs().sum() >= 0:  # depends on the values: fx sees a Proxy here and gives up
            x = x.relu()
        return self.fc(self.pool(x).flatten(1))


if __name__ == "__main__":
    import shapecalc

    print(shapecalc.analyze(EarlyExit(), (1, 1, 28, 28)).table())
