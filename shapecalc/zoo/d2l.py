"""Models as the d2l book (Dive into Deep Learning, d2l.ai) defines them."""

from __future__ import annotations

from ..blocks import Sequential
from ..layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from . import register


@register(
    "alexnet",
    default_input=(1, 1, 224, 224),
    description="AlexNet as in d2l §8.1: Fashion-MNIST at 224×224, 10 classes",
    source="d2l.ai chapter 8.1 (Krizhevsky et al. 2012, one tower, 1 input channel)",
)
def alexnet(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    # The first Linear's in_features is derived from the input (6400 at 224, 9216 at 227),
    # so the same spec serves every input size the engine accepts.
    return Sequential(
        Conv2d(in_channels, 96, 11, stride=4, padding=1), ReLU(), MaxPool2d(3, stride=2),
        Conv2d(96, 256, 5, padding=2), ReLU(), MaxPool2d(3, stride=2),
        Conv2d(256, 384, 3, padding=1), ReLU(),
        Conv2d(384, 384, 3, padding=1), ReLU(),
        Conv2d(384, 256, 3, padding=1), ReLU(), MaxPool2d(3, stride=2),
        Flatten(),
        Linear(None, 4096), ReLU(), Dropout(0.5),
        Linear(4096, 4096), ReLU(), Dropout(0.5),
        Linear(4096, num_classes),
    )
