"""The library API on a model of your own: write it as a spec tree, analyse it, render it.

Layers take torch's names and arguments (``in_channels=None`` is inferred, like ``nn.Lazy*``);
``Sequential``, ``Residual`` and ``Branches`` say how they are wired. No torch needed.

Run: ``python examples/build_and_analyze.py``
"""

from __future__ import annotations

import shapecalc
from shapecalc.core.blocks import Residual, Sequential
from shapecalc.core.layers import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU


def basic_block(channels: int) -> Residual:
    body = Sequential(conv1=Conv2d(channels, channels, 3, padding=1), bn1=BatchNorm2d(channels),
                      relu=ReLU(), conv2=Conv2d(channels, channels, 3, padding=1),
                      bn2=BatchNorm2d(channels))
    return Residual(body, post=ReLU())


def tiny_resnet(num_classes: int = 10) -> Sequential:
    return Sequential(
        stem=Sequential(conv=Conv2d(1, 32, 7, stride=2, padding=3), bn=BatchNorm2d(32), relu=ReLU(),
                        pool=MaxPool2d(3, stride=2, padding=1)),
        stage1=Sequential(basic_block(32), basic_block(32)),
        head=Sequential(pool=AdaptiveAvgPool2d(1), flatten=Flatten(), fc=Linear(None, num_classes)),
    )


def main() -> None:
    model = tiny_resnet()
    result = shapecalc.analyze(model, (1, 1, 96, 96))
    print(result.table(depth=1))  # blocks below depth 1 collapse into summed rows

    stem = result.record("stem.conv")
    print("stem.conv:", stem.output_shape, f"{stem.params} params", stem.notes)
    print("\n".join(stem.explain()))
    assert stem.output_shape == (1, 32, 48, 48)
    assert result.output_shape == (1, 10)
    assert result.blocks["stage1"].params == sum(
        r.params for r in result.records if r.name.startswith("stage1."))

    data = result.to_dict()
    print("JSON keys:", ", ".join(k for k in data if k != "layers"), f"+ {len(data['layers'])} layers")
    smallest = shapecalc.minimum_input(model, (1, 1, 96, 96))
    print(f"smallest input it accepts: {smallest}×{smallest}")
    assert smallest is not None and smallest <= 96


if __name__ == "__main__":
    main()
