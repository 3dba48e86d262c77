"""The sequence layout torch's attention and recurrent modules share.

``nn.MultiheadAttention``, ``nn.LSTM`` and ``nn.TransformerEncoderLayer`` all take a batched
``(L, N, E)`` input, or ``(N, L, E)`` with ``batch_first=True``, or an unbatched ``(L, E)``; the
rule lives here once so that every such layer reads (and rebuilds) shapes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.layers.base import Layer, Shape, format_shape


@dataclass(frozen=True)
class SequenceDims:
    """One sequence input taken apart: ``batch`` is ``None`` for an unbatched ``(L, E)``."""

    batch: int | None
    length: int
    features: int
    batch_first: bool

    @property
    def length_axis(self) -> int:
        """The tensor axis that holds the positions: 0 for ``(L, N, E)`` and ``(L, E)``."""
        return 1 if self.batch_first and self.batch is not None else 0

    @property
    def samples(self) -> int:
        """How many sequences: the batch size, 1 when unbatched."""
        return 1 if self.batch is None else self.batch

    def shape(self, length: int | None = None, features: int | None = None) -> Shape:
        """The same layout with another length and/or feature size."""
        ell = self.length if length is None else length
        f = self.features if features is None else features
        if self.batch is None:
            return (ell, f)
        return (self.batch, ell, f) if self.batch_first else (ell, self.batch, f)


def split_sequence(layer: Layer, shape: Shape, batch_first: bool, what: str = "input") -> SequenceDims:
    """``(N, L, E)`` / ``(L, N, E)`` / ``(L, E)`` → :class:`SequenceDims`, or a ShapeError."""
    if len(shape) == 2:
        return SequenceDims(None, shape[0], shape[1], batch_first)
    if len(shape) == 3:
        if batch_first:
            return SequenceDims(shape[0], shape[1], shape[2], True)
        return SequenceDims(shape[1], shape[0], shape[2], False)
    layout = "(N, L, E)" if batch_first else "(L, N, E)"
    raise ShapeError(
        f"{what} must be 2-D (L, E) unbatched or 3-D {layout} batched"
        f"{'' if batch_first else ' (batch_first=False)'}, got {len(shape)}-D {format_shape(shape)}",
        layer=layer.describe(),
        numbers={f"{what}_shape": shape},
    )


def check_positive(layer: Layer, **values: int | None) -> None:
    """Sizes that torch needs as positive ints (``None`` = inferred later, allowed)."""
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}",
                              layer=layer.describe(), numbers={name: value})


def check_probability(layer: Layer, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a probability between 0 and 1, got {value!r}",
                          layer=layer.describe(), numbers={name: value})
