"""Normalisation layers: shape-preserving, with affine parameters and torch's input-rank rules."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from shapecalc.core.errors import FieldError, Reason, ShapeError
from shapecalc.core.notes import Note
from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.arithmetic.field_axes import Mixed
from shapecalc.core.layers.fields import derived
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, at_least, format_shape, inferred_note, spatial_dims
from shapecalc.core.layers.saved import INPUT, Backward, Saved, new


def _affine_cost(rule: str, terms: str, params: int, samples: int) -> list[str]:
    """A norm layer's parameters (its affine weight and bias) and MACs, each parameter once per
    sample (torchinfo's convention, kept so that CNN totals agree)."""
    if params == 0:
        return []
    return [f"params = {rule} = {terms} = {params:,}",
            f"MACs = samples · params = {samples:,} · {params:,} = {samples * params:,}"]


class _Norm(Layer):
    """The norm layers' one MAC rule (torchinfo's convention): each affine parameter once per
    sample. ``samples`` is the batch size, or 1 for an input without a batch dimension."""

    kind: ClassVar[LayerKind] = LayerKind.NORM

    def samples(self, output: Shape) -> int:
        return output[0]

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        return self.samples(output) * self.param_count(*inputs)


@dataclass(frozen=True)
class _BatchNormNd(_Norm):
    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True

    inferred: ClassVar[tuple[str, ...]] = ("num_features",)
    #: accepted input ranks; the first is the batched (N, C, ...) form. Only InstanceNorm
    #: also takes an unbatched (C, ...) input; BatchNorm2d/3d insist on 4-D/5-D like torch.
    ranks: ClassVar[tuple[int, ...]] = (4,)

    def __post_init__(self) -> None:
        at_least(self, "num_features", 1)
        at_least(self, "eps", 0)

    def _channels(self, inp: Shape) -> int:
        if len(inp) not in self.ranks:
            raise ShapeError(
                f"expects a {' or '.join(f'{r}-D' for r in self.ranks)} input, got {len(inp)}-D {format_shape(inp)}",
                layer=self.describe(),
            )
        # BatchNorm1d's 2-D input is (N, C), not an unbatched (C, L): channels stay at index 1.
        c = inp[0] if self._unbatched(inp) else inp[1]
        if self.num_features is not None and c != self.num_features:
            raise ShapeError(
                f"expects {self.num_features} channels, got {c}",
                layer=self.describe(),
                numbers={"expected_channels": self.num_features, "channels": c}, reason=Reason.CHANNELS,
            )
        return c

    def output_shape(self, *inputs: Shape) -> Shape:
        self._channels(inputs[0])
        return inputs[0]

    def resolve(self, *inputs: Shape) -> Layer:
        if self.num_features is not None:
            return self
        return derived(self, num_features=self._channels(inputs[0]))

    def param_count(self, *inputs: Shape) -> int:
        return 2 * self._channels(inputs[0]) if self.affine else 0

    def samples(self, output: Shape) -> int:
        return 1 if self._unbatched(output) else output[0]

    def _unbatched(self, shape: Shape) -> bool:
        return self.type_name.startswith("InstanceNorm") and len(shape) == self.ranks[-1]

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """With running statistics (BatchNorm in eval mode, as analysed) each value is scaled on
        its own; statistics of the sample itself (InstanceNorm) come from every position."""
        return FieldRule.POINTWISE if self.track_running_stats else FieldRule.GLOBAL

    def explain_cost(self, output: Shape, *inputs: Shape) -> list[str]:
        c = self._channels(inputs[0])
        return _affine_cost("2·num_features", f"2·{c:,}", self.param_count(*inputs),
                            self.samples(output))

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """The input and, when it normalises with batch statistics, their mean and inverse
        standard deviation per channel (running statistics are buffers, not activations).
        Instance norm is batch norm over (1, N·C, …): statistics per sample and channel, and
        an affine one repeats its weight per sample."""
        if not grad.active:
            return ()
        inp = inputs[0]
        c = self._channels(inp)
        batch_stats = grad.training or not self.track_running_stats
        if self.type_name.startswith("InstanceNorm"):
            rows = c if self._unbatched(inp) else inp[0] * c
            return (INPUT,) + (new((rows,), grad.stats_dtype),) * (3 if self.affine else 2)
        if not batch_stats:
            return (INPUT,)
        return (INPUT, new((c,), grad.stats_dtype), new((c,), grad.stats_dtype))

    def param_tensors(self, *inputs: Shape) -> int:
        return 2 if self.affine else 0

    def describe(self) -> str:
        return f"{self.type_name}({'?' if self.num_features is None else self.num_features})"

    def notes(self, output: Shape, *inputs: Shape) -> list[Note]:
        if self.num_features is None:
            return [inferred_note("num_features", self._channels(inputs[0]))]
        return []


class BatchNorm1d(_BatchNormNd):
    ranks: ClassVar[tuple[int, ...]] = (3, 2)  # (N, C, L) or (N, C)


class BatchNorm2d(_BatchNormNd):
    ranks: ClassVar[tuple[int, ...]] = (4,)


class BatchNorm3d(_BatchNormNd):
    ranks: ClassVar[tuple[int, ...]] = (5,)


@dataclass(frozen=True)
class InstanceNorm2d(_BatchNormNd):
    ranks: ClassVar[tuple[int, ...]] = (4, 3)
    affine: bool = False
    track_running_stats: bool = False


@dataclass(frozen=True)
class GroupNorm(_Norm):
    num_groups: int
    num_channels: int | None = None
    eps: float = 1e-5
    affine: bool = True

    inferred: ClassVar[tuple[str, ...]] = ("num_channels",)

    def __post_init__(self) -> None:
        at_least(self, "num_groups", 1)
        at_least(self, "num_channels", 1)
        at_least(self, "eps", 0)
        if self.num_channels is not None and self.num_channels % self.num_groups:
            raise FieldError("num_groups", f"num_channels {self.num_channels} is not divisible by "
                             f"num_groups {self.num_groups}", layer=self.type_name,
                             numbers={"num_channels": self.num_channels, "num_groups": self.num_groups})

    def _channels(self, inp: Shape) -> int:
        if len(inp) < 2:
            raise ShapeError(f"expects an (N, C, ...) input, got {len(inp)}-D {format_shape(inp)}",
                             layer=self.describe())
        c = inp[1]
        if self.num_channels is not None and c != self.num_channels:
            raise ShapeError(f"expects {self.num_channels} channels, got {c}", layer=self.describe())
        if c % self.num_groups:
            raise ShapeError(
                f"channels {c} are not divisible by num_groups {self.num_groups}", layer=self.describe()
            )
        return c

    def output_shape(self, *inputs: Shape) -> Shape:
        self._channels(inputs[0])
        return inputs[0]

    def resolve(self, *inputs: Shape) -> Layer:
        if self.num_channels is not None:
            return self
        return derived(self, num_channels=self._channels(inputs[0]))

    def param_count(self, *inputs: Shape) -> int:
        return 2 * self._channels(inputs[0]) if self.affine else 0


    def explain_cost(self, output: Shape, *inputs: Shape) -> list[str]:
        c = self._channels(inputs[0])
        return _affine_cost("2·num_channels", f"2·{c:,}", self.param_count(*inputs), self.samples(output))

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """The input, and a mean and an inverse standard deviation per sample and group."""
        if not grad.active:
            return ()
        stats = new((inputs[0][0], self.num_groups), grad.stats_dtype)
        return (INPUT, stats, stats)

    def param_tensors(self, *inputs: Shape) -> int:
        return 2 if self.affine else 0

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.GLOBAL  # each group's mean and variance come from every position


class _TrailingNorm(_Norm):
    """LayerNorm and RMSNorm: normalise over the input's trailing ``normalized_shape`` dims;
    MACs are the affine parameters once per sample. Subclasses say how many parameters."""

    normalized_shape: int | tuple[int, ...]

    def __post_init__(self) -> None:
        at_least(self, "normalized_shape", 1)
        at_least(self, "eps", 0)

    def _norm_shape(self) -> tuple[int, ...]:
        ns = self.normalized_shape
        return (ns,) if isinstance(ns, int) else tuple(ns)

    def output_shape(self, *inputs: Shape) -> Shape:
        return _trailing_normalized(self, inputs[0], self._norm_shape())

    def explain_cost(self, output: Shape, *inputs: Shape) -> list[str]:
        params = self.param_count(*inputs)
        size = "·".join(f"{n:,}" for n in self._norm_shape())
        per = params // prod(self._norm_shape()) if params else 0
        rule = "normalized_shape" if per == 1 else f"{per}·normalized_shape"
        terms = size if per == 1 else f"{per}·{size}"
        return _affine_cost(rule, terms, params, self.samples(output))

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Statistics over the trailing dims mix the positions of those axes: a spatial one's
        on an (N, C, H, W) map, none on a channels-last map normalised over its channels."""
        rank = len(inputs[0])
        return Mixed(tuple(inputs[0]), tuple(inputs[0]),
                     frozenset(range(rank - len(self._norm_shape()), rank)))


@dataclass(frozen=True)
class LayerNorm(_TrailingNorm):
    normalized_shape: int | tuple[int, ...]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def param_count(self, *inputs: Shape) -> int:
        if not self.elementwise_affine:
            return 0
        return prod(self._norm_shape()) * (2 if self.bias else 1)

    def param_tensors(self, *inputs: Shape) -> int:
        return (2 if self.bias else 1) if self.elementwise_affine else 0

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """The input, and a mean and an inverse standard deviation per normalised row."""
        if not grad.active:
            return ()
        inp = inputs[0]
        rows = inp[: len(inp) - len(self._norm_shape())] + (1,) * len(self._norm_shape())
        return (INPUT, new(rows, grad.stats_dtype), new(rows, grad.stats_dtype))


def _trailing_normalized(layer: Layer, inp: Shape, ns: tuple[int, ...]) -> Shape:
    """LayerNorm and RMSNorm normalise over the input's trailing ``normalized_shape`` dims."""
    if len(inp) < len(ns) or tuple(inp[len(inp) - len(ns):]) != ns:
        raise ShapeError(
            f"normalized_shape {format_shape(ns)} does not match the trailing dims of {format_shape(inp)}",
            layer=layer.describe(),
        )
    return inp


@dataclass(frozen=True)
class RMSNorm(_TrailingNorm):
    """``nn.RMSNorm`` (torch ≥ 2.4): LayerNorm without the mean and the bias; ``eps=None``
    means torch's ``finfo(dtype).eps``. MACs: the affine weight once per sample, as LayerNorm."""

    normalized_shape: int | tuple[int, ...]
    eps: float | None = None
    elementwise_affine: bool = True

    def param_count(self, *inputs: Shape) -> int:
        return prod(self._norm_shape()) if self.elementwise_affine else 0

    def param_tensors(self, *inputs: Shape) -> int:
        return 1 if self.elementwise_affine else 0

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """torch composes RMSNorm in float32: ``x.float()`` (the input itself when it is
        float32; the cast copy is what is kept otherwise, hence a float32 copy of the input
        here, an overestimate by half of it for a float32 model), the inverse RMS per row, and
        ``x · rsqrt`` for the weight's gradient."""
        if not grad.active:
            return ()
        inp = inputs[0]
        rows = inp[: len(inp) - len(self._norm_shape())] + (1,) * len(self._norm_shape())
        kept: tuple[Saved, ...] = ()
        if grad.input_grad(0):
            kept = (INPUT if grad.dtype == "float32" else new(inp, "float32"), new(rows, "float32"))
        if self.elementwise_affine and grad.weights_grad:
            kept += (new(inp, "float32"),)
        return kept


@dataclass(frozen=True)
class LocalResponseNorm(Layer):
    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    kind: ClassVar[LayerKind] = LayerKind.NORM

    def __post_init__(self) -> None:
        at_least(self, "size", 1)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE  # its window runs across the channels of one position

    def describe(self) -> str:
        return f"LocalResponseNorm({self.size}, α={self.alpha:g}, β={self.beta:g}, k={self.k:g})"

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """``F.local_response_norm`` is composed of ops: it keeps the input, the squares padded
        along channels (N, 1, C + size - 1, …), the averaged divisor and its power."""
        if not grad.active:
            return ()
        inp = inputs[0]
        padded = (inp[0], 1, inp[1] + self.size - 1) + tuple(inp[2:])
        return (INPUT, new(padded), new(inp), new(inp))
