"""Nodes with several inputs: element-wise addition (residuals) and concatenation (Inception, DenseNet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.arithmetic.field_axes import Joined
from shapecalc.core.errors import Reason, ShapeError
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, format_shape, spatial_dims
from shapecalc.core.layers.saved import Backward, Kept, Saved


def broadcast_shapes(a: Shape, b: Shape) -> Shape | None:
    """Numpy/torch broadcasting of two shapes, ``None`` where they do not broadcast."""
    out = []
    for x, y in zip(reversed((1,) * (len(b) - len(a)) + a), reversed((1,) * (len(a) - len(b)) + b)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


@dataclass(frozen=True)
class Add(Layer):
    """``a + b (+ …)``: shapes must be equal, or broadcast as torch broadcasts them."""

    kind: ClassVar[LayerKind] = LayerKind.MERGE
    arity: ClassVar[int] = 0

    def output_shape(self, *inputs: Shape) -> Shape:
        out = inputs[0]
        for other in inputs[1:]:
            merged = broadcast_shapes(out, other)
            if merged is None:
                raise ShapeError(
                    f"cannot add shapes {format_shape(out)} and {format_shape(other)}",
                    layer=self.describe(),
                    numbers={"shapes": [list(s) for s in inputs]}, reason=Reason.MERGE,
                )
            out = merged
        return out

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        return 0

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE  # position by position, what any operand reads

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()  # a sum's gradient is the incoming one, reduced to each shape

    def describe(self) -> str:
        return "Add()"


def product_saved(grad: Backward, count: int) -> tuple[Saved, ...]:
    """``a * b``: each factor's gradient needs the other one, so ``b`` is kept when ``a``
    needs a gradient and ``a`` when ``b`` does. One tensor times a trainable weight read in
    the forward (a layer scale) keeps the tensor for the weight's gradient."""
    if count == 1:
        return (Saved(Kept.INPUT, 0),) if grad.weights_grad else ()
    kept = [Saved(Kept.INPUT, j) for j in range(count)
            if any(grad.input_grad(i) for i in range(count) if i != j) or grad.weights_grad]
    return tuple(kept)


@dataclass(frozen=True)
class Mul(Add):
    """``a * b``: same shape rules as :class:`Add` (attention gates, squeeze-excitation)."""

    def describe(self) -> str:
        return "Mul()"

    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return product_saved(grad, len(inputs))


@dataclass(frozen=True)
class Concat(Layer):
    """``torch.cat(inputs, dim)``: every dimension but ``dim`` must agree; ``dim`` adds up."""

    dim: int = 1

    kind: ClassVar[LayerKind] = LayerKind.MERGE
    arity: ClassVar[int] = 0

    def output_shape(self, *inputs: Shape) -> Shape:
        first = inputs[0]
        rank = len(first)
        dim = self.dim + rank if self.dim < 0 else self.dim
        if not 0 <= dim < rank:
            raise ShapeError(f"dim {self.dim} is out of range for {rank}-D inputs", layer=self.describe())
        others = first[:dim] + first[dim + 1 :]  # every dimension but dim, as all must have
        total = 0
        for shape in inputs:
            if len(shape) != rank or shape[:dim] + shape[dim + 1 :] != others:
                raise ShapeError(
                    f"cannot concatenate {format_shape(first)} and {format_shape(shape)} along dim {self.dim}: "
                    f"all other dimensions must match",
                    layer=self.describe(),
                    numbers={"shapes": [list(s) for s in inputs], "dim": self.dim}, reason=Reason.MERGE,
                )
            total += shape[dim]
        return first[:dim] + (total,) + first[dim + 1 :]

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Along the channels, position by position; along an axis that holds a field the
        positions of the later inputs move, which no per-axis rule here follows."""
        return Joined(self.dim % len(inputs[0]))
    def saved(self, grad: Backward, output: Shape, *inputs: Shape) -> tuple[Saved, ...]:
        return ()  # the gradient is sliced back by the sizes alone

    def describe(self) -> str:
        return f"Concat(dim={self.dim})"

