"""Layers for what people write as tensor methods or ``torch.nn.functional`` calls.

A forward that says ``x.view(x.size(0), -1)``, ``x.mean((2, 3))`` or ``F.pad(x, (1, 1))`` has no
module to hook; the fx import maps those calls onto these specs so that their shapes are derived
(not measured) and so that spec files can say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from shapecalc.core.errors import ConfigError, Reason, ShapeError
from shapecalc.core.arithmetic import AxisStep, FieldRule
from shapecalc.core.arithmetic.field_axes import Mixed, Permuted, Reshaped
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, format_shape, one_of, spatial_dims
from shapecalc.core.layers.merge import Add, broadcast_shapes, product_saved
from shapecalc.core.layers.saved import Backward, Kept, Saved


class _View:
    """Reshaping ops return a view of their input and keep nothing: backward needs sizes."""

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()

    def output_is_view(self, training: bool) -> bool:
        return True


def _dim(dim: int, rank: int, layer: Layer) -> int:
    d = dim + rank if dim < 0 else dim
    if not 0 <= d < rank:
        raise ShapeError(f"dim {dim} is out of range for a {rank}-D input", layer=layer.describe())
    return d


@dataclass(frozen=True)
class Reshape(_View, Layer):
    """``x.view(*shape)`` / ``x.reshape(*shape)``: ``-1`` is inferred, ``0`` copies that input dim.

    The ``0`` convention is ONNX's; it is how ``x.view(x.size(0), -1)`` is written without a
    batch size baked in.
    """

    shape: tuple[int, ...]

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def __post_init__(self) -> None:
        if sum(1 for v in self.shape if v == -1) > 1:
            raise ConfigError("only one dimension of a reshape can be -1", layer=self.describe())
        if any(v < -1 for v in self.shape):
            raise ConfigError(f"invalid reshape size in {self.shape}", layer=self.describe())

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        total = prod(inp)
        dims = []
        for i, v in enumerate(self.shape):
            if v == 0:
                if i >= len(inp):
                    raise ShapeError(f"size 0 at position {i} copies a dim the {len(inp)}-D input lacks",
                                     layer=self.describe())
                v = inp[i]
            dims.append(v)
        known = prod(v for v in dims if v != -1)
        if -1 in dims:
            if known == 0 or total % known:
                raise ShapeError(
                    f"cannot view {format_shape(inp)} ({total} elements) as {_fmt_shape(dims)}: "
                    f"{total} is not divisible by {known}",
                    layer=self.describe(),
                    numbers={"elements": total, "known": known, "input_shape": inp, "shape": tuple(dims)},
                    reason=Reason.ELEMENTS,
                )
            dims[dims.index(-1)] = total // known
        elif known != total:
            raise ShapeError(
                f"cannot view {format_shape(inp)} ({total} elements) as {_fmt_shape(dims)} ({known} elements)",
                layer=self.describe(),
                numbers={"elements": total, "known": known, "input_shape": inp, "shape": tuple(dims)},
                    reason=Reason.ELEMENTS,
            )
        return tuple(dims)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """To (N, features) every feature reads the whole map (the Linear after it does); any
        other reshape carries each field to the axis that holds it, or leaves it unknown where
        it splits one (:class:`~shapecalc.core.arithmetic.field_axes.Reshaped`)."""
        inp = inputs[0]
        out = self.output_shape(inp)
        if len(out) <= 2:
            return FieldRule.GLOBAL
        return Reshaped(tuple(inp), tuple(out))

    def describe(self) -> str:
        return f"Reshape({', '.join('N' if v == 0 else str(v) for v in self.shape)})"


def _fmt_shape(dims: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


@dataclass(frozen=True)
class Permute(_View, Layer):
    """``x.permute(*dims)``."""

    dims: tuple[int, ...]

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        if len(self.dims) != len(inp):
            raise ShapeError(f"permute of {len(self.dims)} dims applied to a {len(inp)}-D input",
                             layer=self.describe())
        order = [_dim(d, len(inp), self) for d in self.dims]
        if sorted(order) != list(range(len(inp))):
            raise ConfigError(f"dims {self.dims} are not a permutation", layer=self.describe())
        return tuple(inp[d] for d in order)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Fields move with their axes (channels-last and back: ConvNeXt, Swin)."""
        rank = len(inputs[0])
        return Permuted(tuple(inputs[0]), tuple(d % rank for d in self.dims))


@dataclass(frozen=True)
class Transpose(_View, Layer):
    """``x.transpose(dim0, dim1)``."""

    dim0: int
    dim1: int

    kind: ClassVar[LayerKind] = LayerKind.RESHAPE

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = list(inputs[0])
        a, b = _dim(self.dim0, len(inp), self), _dim(self.dim1, len(inp), self)
        inp[a], inp[b] = inp[b], inp[a]
        return tuple(inp)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Fields move with their axes (tokens to (N, L, C) and back)."""
        rank = len(inputs[0])
        order = list(range(rank))
        a, b = self.dim0 % rank, self.dim1 % rank
        order[a], order[b] = order[b], order[a]
        return Permuted(tuple(inputs[0]), tuple(order))


@dataclass(frozen=True)
class Mean(Layer):
    """``x.mean(dim, keepdim)``: with ``dim=(2, 3)`` the global average pooling of a CNN head."""

    dim: int | tuple[int, ...]
    keepdim: bool = False

    kind: ClassVar[LayerKind] = LayerKind.POOL

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = inputs[0]
        dims = (self.dim,) if isinstance(self.dim, int) else tuple(self.dim)
        drop = {_dim(d, len(inp), self) for d in dims}
        if len(drop) != len(dims):
            raise ConfigError(f"dim {self.dim} names a dimension twice", layer=self.describe())
        if self.keepdim:
            return tuple(1 if i in drop else n for i, n in enumerate(inp))
        return tuple(n for i, n in enumerate(inp) if i not in drop)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """A mean reads all of each axis it averages; the other axes keep their positions
        (the channels of a channels-last map averaged: each position alone)."""
        rank = len(inputs[0])
        dims = frozenset(d % rank for d in ((self.dim,) if isinstance(self.dim, int) else self.dim))
        return Mixed(tuple(inputs[0]), self.output_shape(*inputs), dims, drop=not self.keepdim)

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()  # the gradient is spread evenly: sizes alone


@dataclass(frozen=True)
class Pad(Layer):
    """``F.pad(x, pad)``: ``pad`` lists (left, right) pairs starting from the LAST dimension."""

    pad: tuple[int, ...]
    mode: str = "constant"
    value: float | None = None

    kind: ClassVar[LayerKind] = LayerKind.OTHER
    non_finite: ClassVar[tuple[str, ...]] = ("value",)  # F.pad(x, p, value=-inf) before a max

    def __post_init__(self) -> None:
        one_of(self, "mode", ("constant", "reflect", "replicate", "circular"))

    def output_shape(self, *inputs: Shape) -> Shape:
        inp = list(inputs[0])
        if len(self.pad) % 2 or len(self.pad) // 2 > len(inp):
            raise ConfigError(f"pad {self.pad} must hold (left, right) pairs for at most {len(inp)} dims",
                              layer=self.describe())
        for i in range(len(self.pad) // 2):
            axis = len(inp) - 1 - i
            size = inp[axis] + self.pad[2 * i] + self.pad[2 * i + 1]
            if size < 1:
                raise ShapeError(f"padding {self.pad} leaves dim {axis} with size {size}", layer=self.describe())
            inp[axis] = size
        return tuple(inp)

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Each position moves by the padding before it (``pad`` lists the last axis first);
        a padded border reads nothing, or a mirrored pixel, which only the image's edge sees."""
        spatial = spatial_dims(len(inputs[0]))
        steps = []
        for axis in spatial:
            i = len(inputs[0]) - 1 - axis  # pairs count from the last axis
            steps.append(AxisStep.offset(self.pad[2 * i] if 2 * i < len(self.pad) else 0))
        return tuple(steps)

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()  # every mode's backward needs the paddings alone

    def describe(self) -> str:
        mode = "" if self.mode == "constant" else f", {self.mode}"
        return f"Pad({', '.join(map(str, self.pad))}{mode})"


@dataclass(frozen=True)
class Elementwise(Add):
    """An element-wise op other than add/mul (``x - y``, ``x / 2``, ``x * 0.5``): shapes broadcast."""

    op: str = "sub"

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        """A difference keeps nothing; a product keeps as :class:`Mul` does; a quotient
        ``a / b`` keeps ``b`` (for ``a``'s gradient) and ``a`` for ``b``'s. A number operand
        is no tensor: ``x / 2`` keeps nothing, ``x / self.scale`` keeps ``x``."""
        if self.op in ("add", "sub") or not grad.active:
            return ()
        if self.op == "mul":
            return product_saved(grad, len(inputs))
        if self.op == "div":
            if len(inputs) == 1:
                return (Saved(Kept.INPUT, 0),) if grad.weights_grad else ()
            return (Saved(Kept.INPUT, 1),) + ((Saved(Kept.INPUT, 0),) if grad.input_grad(1) else ())
        return None

    def describe(self) -> str:
        return f"Elementwise({self.op})"


FUNCTIONAL_LAYERS: tuple[type[Layer], ...] = (Reshape, Permute, Transpose, Mean, Pad, Elementwise)


@dataclass(frozen=True)
class MatMul(Layer):
    """``a @ b`` / ``torch.matmul(a, b)`` between two activations (attention's ``q @ kᵀ`` and
    ``attn @ v``), by torch.matmul's rules: a 1-D operand is a row (first) or column (second)
    vector whose added axis is dropped again; otherwise the last two axes multiply as matrices
    and the ones before them broadcast.

    MACs are ``batch × n × k × m``, the products torch runs. Torch's FLOP counter agrees
    wherever it has a formula (``mm``, ``bmm``); it has none for the ``dot`` and ``mv`` kernels
    that a 1-D second operand runs, and counts those 0, which is not what they do.
    """

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    arity: ClassVar[int] = 0  # two operands; a variadic layer takes them as separate inputs

    def _operands(self, inputs: tuple[Shape, ...]) -> tuple[Shape, Shape]:
        if len(inputs) != 2:
            raise ShapeError(f"takes two tensors, got {len(inputs)} inputs", layer=self.describe())
        a, b = inputs
        if not a or not b:
            raise ShapeError(f"both operands must be at least 1-D, got {format_shape(a) or 'a scalar'} "
                             f"and {format_shape(b) or 'a scalar'}", layer=self.describe(),
                             numbers={"first_rank": len(a), "second_rank": len(b)})
        return a, b

    def _dims(self, a: Shape, b: Shape) -> tuple[Shape, int, int, int]:
        """``(batch, n, k, m)``: ``a`` is ``batch × n × k``, ``b`` ``batch × k × m`` once a 1-D
        operand is read as a 1-row or 1-column matrix."""
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ShapeError(
                f"cannot multiply {format_shape(a)} by {format_shape(b)}: the first's last size "
                f"{a2[-1]} must equal the second's {'only' if len(b) == 1 else 'second-to-last'} size {b2[-2]}",
                layer=self.describe(), numbers={"first_inner": a2[-1], "second_inner": b2[-2]})
        batch = self._batch(a2[:-2], b2[:-2], a, b)
        return batch, a2[-2], a2[-1], b2[-1]

    def _batch(self, a: Shape, b: Shape, first: Shape, second: Shape) -> Shape:
        batch = broadcast_shapes(a, b)
        if batch is None:
            raise ShapeError(f"batch sizes {format_shape(a)} of {format_shape(first)} and "
                             f"{format_shape(b)} of {format_shape(second)} do not broadcast",
                             layer=self.describe(), numbers={"first_batch": list(a), "second_batch": list(b)})
        return batch

    def output_shape(self, *inputs: Shape) -> Shape:
        a, b = self._operands(inputs)
        batch, n, _, m = self._dims(a, b)
        return batch + (n,) * (len(a) > 1) + (m,) * (len(b) > 1)

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        batch, n, k, m = self._dims(*self._operands(inputs))
        return prod(batch) * n * k * m

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.UNKNOWN  # an output row reads a row of one operand and a column of the other: no axis rule yet

    def describe(self) -> str:
        return f"{type(self).__name__}()"

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        a, b = self._operands(inputs)
        batch, n, k, m = self._dims(a, b)
        over = f" for each of {format_shape(batch)}" if batch else ""
        return [f"{n}×{k} · {k}×{m} → {n}×{m}{over} ({format_shape(a)} @ {format_shape(b)} → "
                f"{format_shape(output) or 'a scalar'})"]


@dataclass(frozen=True)
class BatchMatMul(MatMul):
    """``torch.bmm(a, b)``: both 3-D with the same batch size; no broadcasting."""

    def _operands(self, inputs: tuple[Shape, ...]) -> tuple[Shape, Shape]:
        a, b = super()._operands(inputs)
        if len(a) != 3 or len(b) != 3:
            raise ShapeError(f"both operands must be 3-D, got {format_shape(a)} and {format_shape(b)}",
                             layer=self.describe(), numbers={"first_rank": len(a), "second_rank": len(b)})
        return a, b

    def _batch(self, a: Shape, b: Shape, first: Shape, second: Shape) -> Shape:
        if a != b:
            raise ShapeError(f"batch sizes {a[0]} and {b[0]} differ (bmm does not broadcast)",
                             layer=self.describe(), numbers={"first_batch": a[0], "second_batch": b[0]})
        return a
