"""``nn.PixelShuffle`` and ``nn.PixelUnshuffle``: channels traded for resolution, no weights.

``PixelShuffle(r)`` turns ``(*, C·r², H, W)`` into ``(*, C, H·r, W·r)``: each input pixel's
``r²`` channel groups become an ``r × r`` block of output pixels, so along each spatial axis
output ``o`` reads input ``o // r`` (a jump of ``1/r``). ``PixelUnshuffle(r)`` is its inverse:
an output pixel gathers an ``r × r`` block, a window of ``r`` at stride ``r``. Both only move
values: 0 MACs, as torch's FLOP counter says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shapecalc.core.arithmetic import AxisStep
from shapecalc.core.errors import ShapeError
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, at_least, format_shape, spatial_dims


def _three_d(layer: Layer, inp: Shape) -> None:
    if len(inp) < 3:
        raise ShapeError(f"expects an input of at least 3 dims (*, C, H, W), got {len(inp)}-D "
                         f"{format_shape(inp)}", layer=layer.describe(), numbers={"input_shape": inp})


def _steps(rank: int, step: AxisStep) -> FieldSteps:
    """``step`` along H and W (the last two dims); dims before them that fields follow (extra
    batch dims) keep their positions."""
    return tuple(step if d >= rank - 2 else AxisStep.offset(0) for d in spatial_dims(rank))


@dataclass(frozen=True)
class PixelShuffle(Layer):
    upscale_factor: int

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def __post_init__(self) -> None:
        at_least(self, "upscale_factor", 1)

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        _three_d(self, inp)
        r = self.upscale_factor
        *batch, c, h, w = inp
        if c % (r * r):
            raise ShapeError(f"channels {c} are not divisible by upscale_factor² = {r * r}",
                             layer=self.describe(), numbers={"channels": c, "upscale_factor": r})
        return (*batch, c // (r * r), h * r, w * r)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return _steps(len(inputs[0]), AxisStep.spread(self.upscale_factor))

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        r, (c, h, w) = self.upscale_factor, inputs[0][-3:]
        return [f"C: {c} / {r}² = {c // (r * r)};  H: {h}·{r} = {h * r};  W: {w}·{r} = {w * r}"]

    def saved(self, grad, output: Shape, *inputs: Shape) -> tuple:
        return ()  # its backward is a pixel_unshuffle of the gradient: sizes only

    def describe(self) -> str:
        return f"PixelShuffle({self.upscale_factor})"


@dataclass(frozen=True)
class PixelUnshuffle(Layer):
    downscale_factor: int

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def __post_init__(self) -> None:
        at_least(self, "downscale_factor", 1)

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        _three_d(self, inp)
        r = self.downscale_factor
        *batch, c, h, w = inp
        for axis, n in (("H", h), ("W", w)):
            if n % r:
                raise ShapeError(f"{axis} = {n} is not divisible by downscale_factor {r}",
                                 layer=self.describe(), axis=axis,
                                 numbers={"input": n, "downscale_factor": r})
        return (*batch, c * r * r, h // r, w // r)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        r = self.downscale_factor
        return _steps(len(inputs[0]), AxisStep.window(r, r, 0))

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        r, (c, h, w) = self.downscale_factor, inputs[0][-3:]
        return [f"C: {c}·{r}² = {c * r * r};  H: {h} / {r} = {h // r};  W: {w} / {r} = {w // r}"]

    def saved(self, grad, output: Shape, *inputs: Shape) -> tuple:
        return ()  # its backward is a pixel_shuffle of the gradient: sizes only

    def describe(self) -> str:
        return f"PixelUnshuffle({self.downscale_factor})"
