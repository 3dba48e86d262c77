"""Forwards written with functional calls, views and reshapes, reused modules, lazy modules."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class FunctionalNet(nn.Module):
    """Only parameterised layers are modules; everything else is a function call."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.leaky_relu(self.conv2(x), 0.2), kernel_size=3, stride=2, padding=1)
        x = F.adaptive_avg_pool2d(x, (3, 3))
        x = F.dropout(torch.flatten(x, 1), p=0.25, training=self.training)
        return F.log_softmax(self.fc(x), dim=1)


class ViewsNet(nn.Module):
    """view(size(0), -1), reshape with literals, permute/transpose/contiguous, interpolate, pad."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.proj = nn.Linear(8, 8)
        self.fc = nn.Linear(8 * 10 * 10, 6)

    def forward(self, x):
        x = self.conv(x)                                  # N×8×16×16
        n, c, h, w = x.shape
        t = x.permute(0, 2, 3, 1).contiguous()            # N×16×16×8
        t = self.proj(t).transpose(1, 3)                  # N×8×16×16
        t = F.interpolate(t, scale_factor=0.5)            # N×8×8×8
        t = F.pad(t, (1, 1, 1, 1))                        # N×8×10×10
        y = t.reshape(t.size(0), -1)
        y = y.view(-1, 8 * 10 * 10)
        return self.fc(y)


class ReusedNet(nn.Module):
    """One conv and one activation module applied three times: weights shared, cost every time."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Conv2d(3, 8, 3, padding=1)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        x = self.act(self.inp(x))
        for _ in range(3):
            x = self.act(self.shared(x)) + x
        return self.out(x.mean(dim=(2, 3)))


class LazyNet(nn.Module):
    """Lazy modules infer their input sizes, like a spec file's optional in_channels."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.LazyConv2d(16, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(2),
            nn.LazyConv2d(32, 3, stride=2), nn.ReLU())
        self.classifier = nn.LazyLinear(10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
