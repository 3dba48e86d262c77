"""The trained network is the engine's spec, built by ``torch_bridge`` and checked on the device.

Building from the spec (not a hand-written copy) is the point: the classifier's
``in_features`` comes from the engine's arithmetic at the chosen image size, and the shape
check before training proves the table the user reads is the module that trains.
"""

from __future__ import annotations

import torch
from torch import nn

from ..api import analyze, load_model, minimum_input
from ..torch_bridge import build_module, trace_shapes
from ..errors import ShapeError, UsageError
from .errors import TrainError


def default_image_size(model_name: str) -> int:
    """The model's own input size (224 for d2l's AlexNet, 28 for LeNet)."""
    shape = load_model(model_name).default_input
    return int(shape[-1]) if shape and len(shape) == 4 else 224


def check_image_size(model_name: str, size: int) -> None:
    """Fail before any work unless the model takes 1×``size``×``size`` and gives 10 classes."""
    try:
        table = analyze(model_name, (1, 1, size, size))
    except ShapeError as err:
        smallest = minimum_input(model_name, (1, 1, size, size))
        if smallest is not None and size < smallest:
            raise UsageError(
                f"--image-size: {model_name} needs at least {smallest}x{smallest} "
                f"(the smallest input its layers accept), got {size}"
            ) from None
        raise TrainError(f"--model {model_name} cannot take Fashion-MNIST batches of "
                         f"1x{size}x{size}: {err}") from None
    if tuple(table.output_shape) != (1, 10):
        raise TrainError(f"--model {model_name}: its output is {_fmt(table.output_shape)}, "
                         "Fashion-MNIST needs 10 class scores (1x10)")


def xavier_init(module: nn.Module) -> None:
    """d2l's init: Xavier-uniform weights for Conv2d and Linear, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(model_name: str, size: int, seed: int) -> nn.Module:
    """The spec's module for a 1×``size``×``size`` input, initialised from ``seed``."""
    check_image_size(model_name, size)
    module = build_module(model_name, (1, 1, size, size))
    torch.manual_seed(seed)
    xavier_init(module)
    return module


def check_shapes(model_name: str, module: nn.Module, size: int, device: torch.device,
                 batch: int = 2) -> int:
    """Forward a batch on ``device`` with hooks; any layer differing from the engine stops the run.

    Returns the number of layers compared.
    """
    shape = (batch, 1, size, size)
    table = analyze(model_name, shape)
    try:
        measured = trace_shapes(module, shape, device=str(device))
    except RuntimeError as err:  # a layer that disagrees badly enough that torch refuses it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainError(f"shape check failed before training: torch's forward on {device} "
                         f"raised: {first}") from None
    diffs = []
    for record in table.records:
        got = measured.get(record.name)
        if got is not None and tuple(got) != tuple(record.output_shape):
            diffs.append(f"{record.name} ({record.type}): engine {_fmt(record.output_shape)}, "
                         f"torch {_fmt(got)}")
    if tuple(measured[""]) != tuple(table.output_shape):
        diffs.append(f"output: engine {_fmt(table.output_shape)}, torch {_fmt(measured[''])}")
    if diffs:
        raise TrainError("shape check failed before training: " + "; ".join(diffs))
    return len(table.records)


def _fmt(shape) -> str:
    return "x".join(str(d) for d in shape)
