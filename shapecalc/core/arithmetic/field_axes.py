"""Which tensor axis holds each receptive field, through layers that move, merge or mix axes.

A field is kept per spatial axis of the *input image* (:class:`AxisRF`). In an (N, C, H, W)
map they sit on the trailing axes, where convolutions read them. Channels-last code moves them:
ConvNeXt and Swin run ``permute(0, 2, 3, 1)``, a LayerNorm and two Linears over the channels,
and ``permute(0, 3, 1, 2)`` back; a ViT flattens (H, W) to one token axis. None of that reads
another position, so the field must come through unchanged, and a layer that does mix positions
(a Linear along W, a softmax over the tokens) must be seen mixing exactly those.

So a field that has left the trailing axes carries where it is (:class:`FieldAxis`: the tensor
axis, its stride inside it when several are merged into one axis, its length), and layers
that move axes describe how, as a typed value instead of per-axis steps:
:class:`Permuted`, :class:`Reshaped` (row-major, so a field survives where the reshape only
merges or splits the axes around it, or merges it whole with others), :class:`Mixed` (reads
every position of some axes: a Linear or a LayerNorm over the last axis) and :class:`Joined`
(a concatenation along one axis). :func:`follow` says, for each field, where it goes and whether
it is read whole; anything it cannot follow is unknown, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from math import prod
from typing import Sequence

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FieldAxis:
    """Where one field lives: field position ``i`` is index ``i · stride`` (mod ``size·stride``)
    of tensor axis ``axis``. ``stride`` 1 with ``size`` the axis's length: the axis is its own."""

    axis: int
    stride: int
    size: int


Where = tuple[FieldAxis, ...]


class Placed(tuple):
    """Per-axis fields (:class:`AxisRF`, one per spatial axis of the input) held on other tensor
    axes than the trailing ones: ``where[i]`` says where field ``i`` is. Everything that reads a
    field as a tuple reads this one the same way."""

    where: Where

    def __new__(cls, fields: Sequence, where: Where | None = None) -> "Placed":
        obj = super().__new__(cls, fields)
        obj.where = where if where is not None else ()
        return obj

    def __reduce__(self):
        return (Placed, (tuple(self), self.where))


def trailing(shape: Shape) -> Where:
    """The usual place: one field per axis after the batch and the channels, each its own."""
    return tuple(FieldAxis(a, 1, shape[a]) for a in range(2, len(shape)))


def where_of(fields: Sequence, shape: Shape) -> Where | None:
    """Where ``fields`` (of a tensor of ``shape``) are; ``None`` when a plain tuple does not fit
    the trailing axes of that shape."""
    if isinstance(fields, Placed):
        return fields.where
    place = trailing(shape)
    return place if len(place) == len(fields) else None


def placed(fields: Sequence, where: Where, shape: Shape) -> tuple:
    """``fields`` at ``where`` in a tensor of ``shape``: a plain tuple in the usual place."""
    return tuple(fields) if where == trailing(shape) else Placed(fields, where)


@dataclass(frozen=True, slots=True)
class Permuted:
    """Output axis ``j`` is input axis ``order[j]`` (``permute``, ``transpose``)."""

    before: Shape
    order: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Reshaped:
    """A row-major reshape of ``before`` to ``after`` (``view``, ``reshape``, ``flatten``)."""

    before: Shape
    after: Shape


@dataclass(frozen=True, slots=True)
class Mixed:
    """Every output reads every position of input axes ``axes`` (which may change length, as a
    Linear's last axis does) and only its own position along the others."""

    before: Shape
    after: Shape
    axes: frozenset[int]
    #: The mixed axes are gone from the output (a mean without ``keepdim``).
    drop: bool = False
    #: An attention's mix (its query's tokens and features): the other inputs (keys, values,
    #: a mask) are read too, so their fields must be the query's (``base.merge_fields``).
    attends: bool = False


@dataclass(frozen=True, slots=True)
class Joined:
    """Several inputs concatenated along axis ``axis``: position by position elsewhere."""

    axis: int


AxisMoves = Permuted | Reshaped | Mixed | Joined


class Read(Enum):
    """What a layer does to one field."""

    KEEP = "keep"    # each output reads the positions it read before, moved to `where`
    WHOLE = "whole"  # each output reads every position of the field


@dataclass(frozen=True, slots=True)
class Followed:
    """Per field: where it is after the layer, and how the layer reads it."""

    where: Where
    reads: tuple[Read, ...]


def follow(where: Where, moves: AxisMoves) -> Followed | None:
    """Where each field of a tensor placed as ``where`` goes through ``moves``; ``None`` when
    some field cannot be followed (a reshape that splits it across two axes). :class:`Joined`
    is the caller's (a merge of several inputs)."""
    if isinstance(moves, Permuted):
        return Followed(tuple(FieldAxis(moves.order.index(f.axis), f.stride, f.size) for f in where),
                        (Read.KEEP,) * len(where))
    if isinstance(moves, Reshaped):
        found = [_reshaped(f, moves.before, moves.after) for f in where]
        if any(f is None for f in found):
            return None
        return Followed(tuple(found), (Read.KEEP,) * len(where))  # type: ignore[arg-type]
    if isinstance(moves, Mixed) and moves.drop:
        if any(f.axis in moves.axes for f in where):  # read whole, then gone: only all of them
            whole = all(f.axis in moves.axes for f in where)
            return Followed(where, (Read.WHOLE,) * len(where)) if whole else None
        return Followed(tuple(FieldAxis(f.axis - sum(a < f.axis for a in moves.axes), f.stride, f.size)
                              for f in where), (Read.KEEP,) * len(where))
    if isinstance(moves, Mixed):
        if len(moves.before) != len(moves.after):
            return None
        out, reads = [], []
        for f in where:
            if f.axis in moves.axes:  # every output along this axis reads all of the field
                out.append(FieldAxis(f.axis, 1, moves.after[f.axis]))
                reads.append(Read.WHOLE)
            elif moves.before[f.axis] != moves.after[f.axis]:
                return None
            else:
                out.append(f)
                reads.append(Read.KEEP)
        return Followed(tuple(out), tuple(reads))
    return None


def _reshaped(f: FieldAxis, before: Shape, after: Shape) -> FieldAxis | None:
    """Field ``f`` after a row-major reshape. Its position is ``(flat // F) % size`` with ``F``
    its stride in the flat order; output axis ``b`` (stride ``T``, length ``m``) holds it when
    ``T`` divides ``F`` and ``(F / T) · size`` divides ``m``: then it is
    ``(index_b // (F / T)) % size``, whatever else shares the axis."""
    flat = f.stride * prod(before[f.axis + 1:])
    for b, m in enumerate(after):
        t = prod(after[b + 1:])
        if t and flat % t == 0 and m % ((flat // t) * f.size) == 0 and flat // t < m:
            return FieldAxis(b, flat // t, f.size)
    return None


__all__ = ["AxisMoves", "FieldAxis", "Followed", "Joined", "Mixed", "Permuted", "Placed", "Read",
           "Reshaped", "Where", "follow", "placed", "trailing", "where_of"]
