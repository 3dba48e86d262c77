"""Lookup tables: ``nn.Embedding`` and ``nn.EmbeddingBag``, whose inputs are integer indices.

MACs: a lookup copies rows and multiplies nothing, so ``Embedding`` counts 0 (fvcore agrees;
torchinfo charges every weight once per sample, as if the table were a Linear layer on one-hot
vectors). ``EmbeddingBag``'s reduction over each bag is element-wise adds and counts 0 as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, format_shape
from shapecalc.core.layers.sequence import check_positive


def _check_padding_idx(layer: Layer, padding_idx: int | None, num_embeddings: int) -> None:
    if padding_idx is None:
        return
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, int) \
            or not -num_embeddings <= padding_idx < num_embeddings:
        raise ConfigError(
            f"padding_idx must be an int from {-num_embeddings} to {num_embeddings - 1} "
            f"(within num_embeddings), got {padding_idx!r}",
            layer=layer.describe(), numbers={"padding_idx": padding_idx})


@dataclass(frozen=True)
class Embedding(Layer):
    """``nn.Embedding``: indices of any shape ``(*)`` → ``(*, embedding_dim)``."""

    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    scale_grad_by_freq: bool = False
    sparse: bool = False

    kind: ClassVar[LayerKind] = LayerKind.LINEAR

    def __post_init__(self) -> None:
        check_positive(self, num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim)
        _check_padding_idx(self, self.padding_idx, self.num_embeddings)

    def output_shape(self, *inputs: Shape) -> Shape:
        return tuple(inputs[0]) + (self.embedding_dim,)

    def param_count(self, *inputs: Shape) -> int:
        return self.num_embeddings * self.embedding_dim

    def param_tensors(self, *inputs: Shape) -> int:
        return 1

    def saved(self, grad, output: Shape, *inputs: Shape):
        """The indices (in their own integer type), for the weight's gradient."""
        from shapecalc.core.layers.saved import INPUT

        return (INPUT,) if grad.weights_grad else ()

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.POINTWISE  # each index picks its own row

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        return [f"each of the {format_shape(inputs[0])} indices (< {self.num_embeddings}) "
                f"picks a row of {self.embedding_dim} values"]

    def describe(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


@dataclass(frozen=True)
class EmbeddingBag(Layer):
    """``nn.EmbeddingBag``: a 2-D ``(B, L)`` input → ``(B, D)``; a 1-D input needs ``offsets``
    as the second input, one per bag (one more than the bags with ``include_last_offset``)."""

    num_embeddings: int
    embedding_dim: int
    max_norm: float | None = None
    norm_type: float = 2.0
    scale_grad_by_freq: bool = False
    mode: str = "mean"
    sparse: bool = False
    include_last_offset: bool = False
    padding_idx: int | None = None

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    arity: ClassVar[int] = 0  # input, then optionally offsets (and per_sample_weights)
    MODES: ClassVar[tuple[str, ...]] = ("sum", "mean", "max")

    def __post_init__(self) -> None:
        check_positive(self, num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim)
        _check_padding_idx(self, self.padding_idx, self.num_embeddings)
        if self.mode not in self.MODES:
            raise ConfigError(f"mode must be one of {', '.join(self.MODES)}, got {self.mode!r}",
                              layer=self.describe())

    def output_shape(self, *inputs: Shape) -> Shape:
        indices = inputs[0]
        if len(indices) == 2:  # torch refuses offsets with a 2-D input: each row is a bag
            if len(inputs) > 1:
                raise ShapeError("a 2-D input is already split into bags; it takes no offsets",
                                 layer=self.describe())
            return (indices[0], self.embedding_dim)
        if len(indices) == 1:
            if len(inputs) < 2 or len(inputs[1]) != 1:
                raise ShapeError("a 1-D input needs 1-D offsets (the start of each bag) as second input",
                                 layer=self.describe())
            bags = inputs[1][0] - (1 if self.include_last_offset else 0)
            return (bags, self.embedding_dim)
        raise ShapeError(f"input must be 1-D (with offsets) or 2-D (B, L), got {len(indices)}-D "
                         f"{format_shape(indices)}", layer=self.describe())

    def param_count(self, *inputs: Shape) -> int:
        return self.num_embeddings * self.embedding_dim

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        return FieldRule.GLOBAL  # a bag's row reduces every index of the bag

    def describe(self) -> str:
        return f"EmbeddingBag({self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r})"


EMBEDDING_LAYERS: tuple[type[Layer], ...] = (Embedding, EmbeddingBag)
