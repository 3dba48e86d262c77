"""Element-wise layers (activations, dropout) and the reshaping ones (Flatten, Linear, Upsample).

Normalisation layers live in :mod:`.norm`."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from shapecalc.core.errors import ConfigError, Reason, ShapeError
from shapecalc.core.notes import Note, NoteKind
from fractions import Fraction

from shapecalc.core.arithmetic import AxisStep, FieldRule
from shapecalc.core.arithmetic.field_axes import Mixed, Reshaped
from shapecalc.core.layers.fields import derived
from shapecalc.core.layers.base import (
    FieldSteps, Layer, LayerKind, Shape, above, at_least, between, format_shape, one_of, spatial_dims,
)
from shapecalc.core.layers.saved import (INPUT, OUTPUT, Backward, Saved, keeps_input_if_active,
                                         keeps_output_if_active, new)


# ------------------------------------------------------------------ element-wise
@dataclass(frozen=True)
class _Activation(Layer):
    kind: ClassVar[LayerKind] = LayerKind.ACTIVATION

    #: In place, torch differentiates these from the overwritten result (SELU, LeakyReLU,
    #: ELU); the others keep a copy of the input taken before it is overwritten.
    inplace_keeps_result: ClassVar[bool] = False

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        # Most activations differentiate from their input (GELU, SiLU, ReLU6, LeakyReLU …);
        # those that can from their output say so (_FromOutput).
        if grad.active and getattr(self, "inplace", False):
            return (OUTPUT,) if self.inplace_keeps_result else (new(inputs[0]),)
        return keeps_input_if_active(grad)

    def output_is_view(self, training: bool) -> bool:
        return bool(getattr(self, "inplace", False))

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE

    def describe(self) -> str:
        args = {k: v for k, v in self.arguments().items() if k != "inplace"}
        inner = ", ".join(f"{k}={v}" for k, v in args.items())
        return f"{self.type_name}({inner})"


@dataclass(frozen=True)
class _InplaceActivation(_Activation):
    """Activations whose only argument is ``inplace`` differ in nothing but their name."""

    inplace: bool = False


class _FromOutput:
    """Activations whose backward reads the output only (threshold_backward, sigmoid_backward,
    tanh_backward, softmax's): an in-place one keeps the overwritten tensor, and no copy."""

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return keeps_output_if_active(grad)


class ReLU(_FromOutput, _InplaceActivation):
    pass


class ReLU6(_InplaceActivation):
    pass


class SiLU(_InplaceActivation):
    pass


class Hardswish(_InplaceActivation):
    pass


class Hardsigmoid(_InplaceActivation):
    pass


class Mish(_InplaceActivation):
    pass


class SELU(_InplaceActivation):
    inplace_keeps_result: ClassVar[bool] = True


class Sigmoid(_FromOutput, _Activation):
    pass


class Tanh(_FromOutput, _Activation):
    pass


@dataclass(frozen=True)
class GELU(_Activation):
    approximate: str = "none"

    def __post_init__(self) -> None:
        one_of(self, "approximate", ("none", "tanh"))


@dataclass(frozen=True)
class LeakyReLU(_Activation):
    negative_slope: float = 0.01
    inplace: bool = False

    inplace_keeps_result: ClassVar[bool] = True


@dataclass(frozen=True)
class ELU(_Activation):
    alpha: float = 1.0
    inplace: bool = False

    inplace_keeps_result: ClassVar[bool] = True


@dataclass(frozen=True)
class PReLU(_Activation):
    num_parameters: int = 1
    init: float = 0.25

    def __post_init__(self) -> None:
        at_least(self, "num_parameters", 1)

    def param_count(self, *inputs: Shape) -> int:
        return self.num_parameters

    def param_tensors(self, *inputs: Shape) -> int:
        return 1


@dataclass(frozen=True)
class Softmax(_FromOutput, _Activation):
    dim: int | None = None

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return softmax_steps(self.dim, inputs[0])


@dataclass(frozen=True)
class LogSoftmax(_FromOutput, _Activation):
    dim: int | None = None

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return softmax_steps(self.dim, inputs[0])


def softmax_steps(dim: int | None, shape: Shape) -> FieldSteps:
    """A softmax mixes the axis it runs along, whichever holds a field; along the channels it
    is position-wise (``dim=None`` is torch's legacy choice: 0 for 0-, 1- and 3-D inputs, else 1)."""
    rank = len(shape)
    if dim is None:
        dim = 0 if rank in (0, 1, 3) else 1
    if not rank:
        return FieldRule.POINTWISE
    return Mixed(tuple(shape), tuple(shape), frozenset({dim % rank}))


@dataclass(frozen=True)
class Identity(Layer):
    kind: ClassVar[LayerKind] = LayerKind.OTHER

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE

    def describe(self) -> str:
        return "Identity()"

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()

    def output_is_view(self, training: bool) -> bool:
        return True


# ------------------------------------------------------------------ dropout
@dataclass(frozen=True)
class _Dropout(Layer):
    p: float = 0.5
    inplace: bool = False

    kind: ClassVar[LayerKind] = LayerKind.DROPOUT

    def __post_init__(self) -> None:
        between(self, "p", 0.0, 1.0)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE  # the analysis is of eval mode, where dropout passes values on

    def describe(self) -> str:
        return f"{self.type_name}(p={self.p:g})"

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """The mask: one per element, or one per channel for the feature (2d/3d) dropouts.
        On a GPU nn.Dropout runs ``native_dropout`` (a bool mask); elsewhere, and always for
        the feature dropouts, the mask is a tensor of the input's type."""
        if not (self.training_active(grad) and grad.active):
            return ()
        inp = inputs[0]
        if self.type_name in ("Dropout1d", "Dropout2d", "Dropout3d"):
            spatial = {"Dropout1d": 1, "Dropout2d": 2, "Dropout3d": 3}[self.type_name]
            batched = len(inp) == spatial + 2
            lead = inp[:2] if batched else inp[:1]
            return (new(lead + (1,) * spatial),)
        fused = grad.cuda and self.type_name == "Dropout"
        return (new(inp, "bool" if fused else None),)

    def training_active(self, grad: Backward) -> bool:
        return grad.training and self.p > 0

    def output_is_view(self, training: bool) -> bool:
        return not training or self.p == 0


class Dropout(_Dropout):
    pass


class Dropout1d(_Dropout):
    pass


class Dropout2d(_Dropout):
    pass


class Dropout3d(_Dropout):
    pass


class AlphaDropout(_Dropout):
    pass


# ------------------------------------------------------------------ reshaping
@dataclass(frozen=True)
class Flatten(Layer):
    start_dim: int = 1
    end_dim: int = -1

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        rank = len(inp)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if rank == 0:
            return (1,)
        if not (0 <= start < rank and 0 <= end < rank) or start > end:
            raise ShapeError(
                f"start_dim {self.start_dim} / end_dim {self.end_dim} are out of range for a {rank}-D input",
                layer=self.describe(),
            )
        return inp[:start] + (prod(inp[start : end + 1]),) + inp[end + 1 :]

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Flattening every axis from the channels on leaves one position that reads all (the
        Linear after it does); flattening nothing keeps the positions; flattening (H, W) into
        tokens keeps each token's field, held on the token axis."""
        rank = len(inputs[0])
        start, end = (self.start_dim % rank, self.end_dim % rank) if rank else (0, 0)
        if start == end:
            return FieldRule.POINTWISE
        if start <= 1 and end == rank - 1:
            return FieldRule.GLOBAL
        return Reshaped(tuple(inputs[0]), self.output_shape(*inputs))  # (H, W) to tokens: per token

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        inp = inputs[0]
        if len(inp) > 2 and self.start_dim == 1 and self.end_dim == -1:
            return [Note.of(NoteKind.FLATTENS, factors=tuple(inp[1:]), total=output[1])]
        return []

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()

    def output_is_view(self, training: bool) -> bool:
        return True

    def describe(self) -> str:
        if (self.start_dim, self.end_dim) == (1, -1):
            return "Flatten()"
        return f"Flatten({self.start_dim}, {self.end_dim})"


@dataclass(frozen=True)
class Linear(Layer):
    in_features: int | None
    out_features: int
    bias: bool = True

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    inferred: ClassVar[tuple[str, ...]] = ("in_features",)

    def __post_init__(self) -> None:
        at_least(self, "in_features", 0)
        at_least(self, "out_features", 0)

    def _features(self, inp: Shape) -> int:
        if not inp:
            raise ShapeError("expects at least a 1-D input, got a scalar", layer=self.describe())
        f = inp[-1]
        if self.in_features is not None and f != self.in_features:
            raise ShapeError(
                f"expects {self.in_features} input features, got {f} "
                f"(input {format_shape(inp)}; torch: mat1 and mat2 shapes cannot be multiplied "
                f"({prod(inp[:-1])}x{f} and {self.in_features}x{self.out_features}))",
                layer=self.describe(),
                numbers={"in_features": self.in_features, "features": f, "input_shape": inp},
                reason=Reason.FEATURES,
            )
        return f

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        self._features(inp)
        return inp[:-1] + (self.out_features,)

    def resolve(self, *inputs: Shape) -> Layer:
        if self.in_features is not None:
            return self
        return derived(self, in_features=self._features(inputs[0]))

    def param_count(self, *inputs: Shape) -> int:
        f = self.in_features if self.in_features is not None else self._features(inputs[0])
        return f * self.out_features + (self.out_features if self.bias else 0)

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        return prod(output[:-1]) * self.param_count(*inputs)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """A Linear mixes its last axis only: on a (N, C, H, W) map each output reads its whole
        row, and nothing of the other rows; on a channels-last map, its position alone."""
        inp = inputs[0]
        if len(inp) <= 2:
            return FieldRule.GLOBAL
        return Mixed(tuple(inp), self.output_shape(inp), frozenset({len(inp) - 1}))

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        # The weight's gradient needs the input; the input's needs only the weight (a parameter).
        return (INPUT,) if grad.weights_grad else ()

    def param_tensors(self, *inputs: Shape) -> int:
        return 2 if self.bias else 1

    def explain_cost(self, output: Shape, *inputs: Shape) -> list[str]:
        f = self.in_features if self.in_features is not None else self._features(inputs[0])
        o = self.out_features
        params = self.param_count(*inputs)
        rule, terms = ("in_features·out_features + out_features", f"{f:,}·{o:,} + {o:,}") if self.bias \
            else ("in_features·out_features", f"{f:,}·{o:,}")
        positions = prod(output[:-1])
        return [f"params = {rule} = {terms} = {params:,}",
                f"MACs = positions · params = {positions:,} · {params:,} = {positions * params:,}"]

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        if self.in_features is None:
            return [Note.of(NoteKind.DERIVED, field="in_features", value=inputs[0][-1])]
        return []

    def describe(self) -> str:
        f = "?" if self.in_features is None else self.in_features
        bias = "" if self.bias else ", bias=False"
        return f"Linear({f}→{self.out_features}{bias})"


@dataclass(frozen=True)
class Upsample(Layer):
    size: int | tuple[int, ...] | None = None
    scale_factor: float | tuple[float, ...] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def __post_init__(self) -> None:
        at_least(self, "size", 1)
        above(self, "scale_factor", 0)
        one_of(self, "mode", ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area",
                              "nearest-exact"))

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        spatial = inp[2:]
        n = len(spatial)
        if n < 1:
            raise ShapeError(f"expects a batched 3-D to 5-D input, got {format_shape(inp)}", layer=self.describe())
        if (self.size is None) == (self.scale_factor is None):
            raise ConfigError("give exactly one of size and scale_factor", layer=self.describe())
        if self.size is not None:
            out = (self.size,) * n if isinstance(self.size, int) else tuple(self.size)
        else:
            sf = self.scale_factor
            factors = (sf,) * n if isinstance(sf, (int, float)) else tuple(sf)  # type: ignore[arg-type]
            if len(factors) != n:
                raise ConfigError(f"scale_factor has {len(factors)} values for {n} spatial axes",
                                  layer=self.describe(), numbers={"scale_factor": sf})
            out = tuple(_scaled(s, f, self) for s, f in zip(spatial, factors))
        if len(out) != n:
            raise ConfigError(f"size has {len(out)} values for {n} spatial axes",
                              layer=self.describe(), numbers={"size": self.size})
        return inp[:2] + out

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Per axis, which input pixels each output interpolates from (``AxisStep.resample``):
        torch's source position uses ``1/scale_factor`` when a factor was given, else in/out."""
        inp = inputs[0]
        out = self.output_shape(inp)
        sf = self.scale_factor
        factors = (sf,) * len(inp[2:]) if isinstance(sf, (int, float)) else sf
        steps = []
        for i, (n, m) in enumerate(zip(inp[2:], out[2:])):
            if self.mode == "area":  # torch's area mode is adaptive average pooling
                steps.append(AxisStep.adaptive(n, m))
                continue
            scale = 1 / Fraction(factors[i]) if factors is not None else None
            step = AxisStep.resample(n, m, self.mode, bool(self.align_corners), scale)
            if step is None:
                return FieldRule.UNKNOWN
            steps.append(step)
        return tuple(steps)
    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()  # every interpolation mode's backward needs the sizes only


def _scaled(size: int, factor: float, layer: Layer) -> int:
    """``floor(size · factor)`` as torch computes it, refused when it is not a usable size."""
    out = size * factor
    if not out < 2**63:  # also catches inf from a huge factor
        raise ShapeError(f"scale_factor {factor:g} makes an output size beyond torch's 64-bit limit",
                         layer=layer.describe(), numbers={"scale_factor": factor})
    if int(out) < 1:
        raise ShapeError(f"scale_factor {factor:g} shrinks size {size} to {int(out)}",
                         layer=layer.describe(), numbers={"scale_factor": factor, "input": size})
    return int(out)
