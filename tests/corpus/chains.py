"""Plain chains: nn.Sequential all the way down (imported without tracing)."""

from collections import OrderedDict

import torch.nn as nn


def lenet_chain() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Flatten(), nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))


def nested_vgg() -> nn.Sequential:
    def stage(c_in: int, c_out: int, convs: int) -> nn.Sequential:
        layers = OrderedDict()
        for i in range(convs):
            layers[f"conv{i}"] = nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{i}"] = nn.ReLU(inplace=True)
        layers["pool"] = nn.MaxPool2d(2, ceil_mode=True)
        return nn.Sequential(layers)

    return nn.Sequential(OrderedDict(
        features=nn.Sequential(stage(3, 16, 1), stage(16, 32, 2), stage(32, 32, 2)),
        head=nn.Sequential(nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Dropout(0.3),
                           nn.Linear(128, 10)),
    ))


def conv_autoencoder() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1, bias=False), nn.Sigmoid())


def audio_1d() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(1, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8), nn.GELU(), nn.MaxPool1d(3, 2),
        nn.Conv1d(8, 16, 5, dilation=2, padding=4), nn.ELU(), nn.AdaptiveAvgPool1d(4),
        nn.Flatten(), nn.Linear(64, 5), nn.LogSoftmax(dim=1))
