"""Ops with no formula (measured), an untraceable forward, and three deliberate shape bugs."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class MeasuredOps(nn.Module):
    """chunk has no formula in shapecalc: its shapes are measured on meta (PixelShuffle is derived)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 16, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.mix = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        x = self.shuffle(self.conv(x))          # 1×4×16×16
        a, b = x.chunk(2, dim=1)                # two 1×2×16×16
        return self.mix(a) + self.mix(b)


class DataDependent(nn.Module):
    """``if x.sum() > 0`` cannot be traced: shapecalc records modules with hooks instead."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.extra = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        x = F.relu(self.conv(x))
        if x.sum() >= 0:  # zeros in, zeros out: this branch runs
            x = self.extra(x)
        x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


class AlexNetBug(nn.Module):
    """d2l's AlexNet with the classic bug: Linear(9216, …) is right for 227×227, not 224×224."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 96, 11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class ResidualStrideBug(nn.Module):
    """The body downsamples (stride 2) but the 1×1 shortcut does not."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.shortcut = nn.Conv2d(16, 32, 1)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


def channel_bug() -> nn.Sequential:
    """The second conv was written for 32 channels; the first makes 16."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
