"""Receptive fields along one axis: which input pixels each output pixel reads.

A layer says how it reads along an axis with an :class:`AxisStep`: output ``o`` reads the input
pixels ``reads(o)``, and output ``o + q`` reads those of ``o`` moved by ``r``.
A conv moves ``r = stride`` pixels per output (``q = 1``); an upsampling by 2 moves one input
pixel every ``q = 2`` outputs: its jump is ½, a fraction. Composing steps gives, for every
output, the exact first and last input pixel it reads on an unbounded input (the theoretical
field): :class:`AxisRF` keeps them for one period of outputs and the shift from one period to
the next. ``size`` is the widest of them; where outputs see different numbers of pixels (after
an upsampling, a transposed conv, an adaptive pool) that is the most any output sees, as
autograd's gradient of that output would show.

The part of a field inside the image (borders clip every layer on the way) is worked out from
the same steps at the real sizes, by :func:`shapecalc.core.image_fields.fields_in_image`.
The theoretical field is exact arithmetic; where torch's floating point reads another pixel
(nearest at a scale that is no power of two) the part inside the image follows torch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from math import floor, gcd
from typing import Callable, Sequence

from shapecalc.core.arithmetic.forward import effective_kernel

#: Longest period of outputs a field is kept for; a longer one (an odd float scale factor whose
#: exact fraction has a huge denominator) makes the field unknown rather than slow.
MAX_PERIOD = 4096

#: The first and last input pixel an output reads, or ``None`` for none.
Span = tuple[int, int] | None


class FieldRule(Enum):
    """How a layer without per-axis steps treats positions."""

    POINTWISE = "pointwise"  # output position i reads input position i only (activations)
    GLOBAL = "global"        # every output reads every position (Linear on a flattened map)
    UNKNOWN = "unknown"      # no rule: the field is not known, and is shown as such


@dataclass(frozen=True, slots=True)
class AxisStep:
    """One layer's reading along one axis: ``reads(o)`` are the input pixels output ``o`` reads,
    in increasing order (a ``range`` for windows; empty for none); ``reads(o + q)`` are those of
    ``reads(o)`` moved by ``r``."""

    q: int
    r: int
    reads: Callable[[int], Sequence[int]]
    #: The indices torch computes at the real sizes, where its floating point differs from the
    #: exact rule ``reads`` (nearest at a scale like 28/46: float32 ``o·scale`` falls just below
    #: a whole number, and torch reads the pixel before); ``None``: the same as ``reads``.
    torch_reads: Callable[[int], Sequence[int]] | None = None

    def in_image(self, o: int) -> Sequence[int]:
        """What torch reads for output ``o`` (the part of a field inside the image follows it)."""
        return (self.torch_reads or self.reads)(o)

    @classmethod
    def window(cls, k: int, s: int, p_left: int, d: int = 1) -> "AxisStep":
        """A conv or pool window: output ``o`` reads ``o·s − p_left`` onwards, every ``d``-th
        pixel, ``k`` of them."""
        return cls(1, s, lambda o: range(o * s - p_left, o * s - p_left + (k - 1) * d + 1, d))

    @classmethod
    def transposed(cls, k: int, s: int, p_left: int, d: int = 1) -> "AxisStep":
        """A transposed conv: output ``o`` gets input ``i`` through tap ``t`` when
        ``o = i·s + t·d − p_left``; an output no tap reaches reads nothing (``s > k``)."""

        g = gcd(d, s)
        cycle, step = s // g, d // g  # taps meeting one output are `cycle` apart, inputs `step`
        inverse = pow(step, -1, cycle) if cycle > 1 else 0

        def reads(o: int) -> Sequence[int]:
            x = o + p_left
            if x % g:
                return ()
            first = (x // g * inverse) % cycle if cycle > 1 else 0  # smallest tap t with t·d ≡ x (mod s)
            if first >= k:
                return ()
            last = first + (k - 1 - first) // cycle * cycle
            return range((x - last * d) // s, (x - first * d) // s + 1, step)

        return cls(s, 1, reads)

    @classmethod
    def offset(cls, left: int) -> "AxisStep":
        """Padding ``left`` pixels before the input (cropping when negative)."""
        return cls(1, 1, lambda o: (o - left,))

    @classmethod
    def spread(cls, r: int) -> "AxisStep":
        """Each input pixel spread over ``r`` outputs (PixelShuffle): output ``o`` reads ``o // r``."""
        return cls(r, 1, lambda o: (o // r,))

    @classmethod
    def whole(cls, n: int) -> "AxisStep":
        """Every output reads all ``n`` positions (a Linear along this axis)."""
        return cls(1, 0, lambda o: range(n))

    @classmethod
    def adaptive(cls, n: int, t: int) -> "AxisStep":
        """Adaptive pooling of ``n`` positions to ``t``: window ``o`` is
        ``[floor(o·n/t), ceil((o+1)·n/t))``."""
        g = gcd(n, t)
        return cls(t // g, n // g, lambda o: range((o * n) // t, -((-(o + 1) * n) // t)))

    @classmethod
    def resample(cls, n: int, m: int, mode: str, align_corners: bool,
                 scale: Fraction | None = None) -> "AxisStep | None":
        """Upsampling (``F.interpolate``, ``nn.Upsample``) of ``n`` positions to ``m``.

        ``scale`` (input pixels per output pixel) is ``1/scale_factor`` when a factor was given,
        as torch uses it, else ``n/m``. Nearest reads one pixel; linear two, cubic four, except
        where the source position is a whole pixel: the other taps then weigh exactly 0 and
        autograd sends them nothing. ``None`` for a mode without a rule here (``area`` is an
        adaptive pool and handled as one).
        """
        if align_corners and mode in ("linear", "bilinear", "bicubic", "trilinear"):
            if m < 2:
                return None
            num, den = n - 1, m - 1
        else:
            scale = Fraction(n, m) if scale is None else scale
            num, den = scale.numerator, scale.denominator
        g = gcd(num, den)
        if g == 0:
            return None
        q, r = den // g, num // g
        if mode in ("nearest", "nearest-exact"):
            half = 1 if mode == "nearest-exact" else 0
            exact = lambda o: (((2 * o + half) * num) // (2 * den),)  # noqa: E731
            emulated = _nearest(n, m, scale, bool(half))
            # Beyond MAX_PERIOD outputs the theory is unknown anyway: torch's own indices then.
            differs = q > MAX_PERIOD or any(exact(o) != emulated(o) for o in range(4 * q))
            return cls(q, r, exact, emulated if differs else None)
        if mode not in ("linear", "bilinear", "bicubic", "trilinear"):
            return None
        first, last = (-1, 2) if mode == "bicubic" else (0, 1)

        def reads(o: int) -> Sequence[int]:
            src = Fraction(o * num, den) if align_corners else Fraction((2 * o + 1) * num - den, 2 * den)
            base = floor(src)
            return (base,) if src == base else range(base + first, base + last + 1)

        return cls(q, r, reads)


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _nearest(n: int, m: int, scale: Fraction | None, exact: bool) -> Callable[[int], Sequence[int]]:
    """torch's nearest source index, in the float32 its kernel computes it in (for every input
    dtype): ``floorf(o · scale)``, or ``floorf((o + ½) · scale)`` for nearest-exact. Where
    ``o · scale`` is a whole number the float32 product can fall just below it, and torch then
    reads the pixel before: so does this. Equal sizes and an exact doubling are torch's own
    special cases (no arithmetic)."""
    factor = _f32(float(scale)) if scale is not None else _f32(_f32(n) / m)
    if not exact and m == n:
        return lambda o: (o,)
    if not exact and m == 2 * n:
        return lambda o: (o >> 1,)
    if exact:
        return lambda o: (floor(_f32(_f32(o + 0.5) * factor)),)
    return lambda o: (floor(_f32(_f32(o) * factor)),)


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Receptive field along one axis, in input pixels.

    ``lo[i]``/``hi[i]``: the first and last input pixel output ``i`` reads, for one period of
    outputs (``None`` for an output that reads none); output ``i + period`` reads those pixels
    moved by ``shift``. Outputs may see different numbers of pixels, so ``size`` is the widest;
    ``jump`` (``shift / period``) is the mean distance between neighbouring outputs' fields, a
    fraction after upsampling; ``start`` is the centre of output 0's field.
    """

    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    shift: int

    @classmethod
    def identity(cls) -> "AxisRF":
        """An input's own axis: pixel ``i`` is pixel ``i``."""
        return _IDENTITY

    @classmethod
    def uniform(cls, size: int, jump: int, first: int) -> "AxisRF":
        """Every output ``size`` wide, ``jump`` apart, output 0 from pixel ``first``."""
        return cls((first,), (first + size - 1,), jump)

    @property
    def period(self) -> int:
        return len(self.lo)

    @property
    def jump(self) -> float:
        value = Fraction(self.shift, self.period)
        return int(value) if value.denominator == 1 else float(value)

    @property
    def size(self) -> int:
        return max(h - l + 1 for l, h in zip(self.lo, self.hi) if l is not None)

    @property
    def start(self) -> float:
        """Centre of output 0's field (where it reads nothing, the centre it would have)."""
        for i, (l, h) in enumerate(zip(self.lo, self.hi)):
            if l is not None:
                return (l + h) / 2 - i * self.shift / self.period
        raise AssertionError("a field reads some pixel")

    def bounds(self, o: int) -> Span:
        """The (first, last) input pixel output ``o`` reads on an unbounded input, or ``None``."""
        turns, i = divmod(o, self.period)
        if self.lo[i] is None:
            return None
        return self.lo[i] + turns * self.shift, self.hi[i] + turns * self.shift  # type: ignore[operator]

    def through(self, step: AxisStep) -> "AxisRF | None":
        """The field after ``step``: each output reads the union of what the input pixels it
        reads read. ``None`` when the period would exceed :data:`MAX_PERIOD` (field unknown)."""
        p = self.period
        if p == 1 and step.q == 1:  # conv and pool chains: one field, moving by `shift`
            read = step.reads(0)
            if not read:
                return None
            return AxisRF((self.lo[0] + read[0] * self.shift,),  # type: ignore[operator]
                          (self.hi[0] + read[-1] * self.shift,), step.r * self.shift)
        g = gcd(p, step.r) if step.r else p
        period = step.q * (p // g)
        if period > MAX_PERIOD:
            return None
        lo: list[int | None] = []
        hi: list[int | None] = []
        for o in range(period):
            read = step.reads(o)
            # Inputs a period apart read alike, moved by `shift` ≥ 0: the first and the last
            # period of what is read hold the lowest and the highest pixel (a window of a
            # million pixels costs two periods, not a million).
            ends = read if len(read) <= 2 * p else [*read[:p], *read[-p:]]
            spans = [b for b in map(self.bounds, ends) if b is not None]
            lo.append(min(b[0] for b in spans) if spans else None)
            hi.append(max(b[1] for b in spans) if spans else None)
        if all(v is None for v in lo):
            return None
        return AxisRF(tuple(lo), tuple(hi), (step.r // g) * self.shift)

    def union(self, other: "AxisRF") -> "AxisRF | None":
        """What an output reading both fields reads (a residual add, a concatenation along the
        channels). ``None`` when the two do not advance alike (no common period)."""
        if len(self.lo) == len(other.lo) == 1 and self.shift == other.shift:
            # One field each, advancing alike (conv and pool chains; a one-period field always
            # reads some pixel): the wider span. The general case below gives the same; this is
            # most merges, so it is spared the loop.
            lo, hi = min(self.lo[0], other.lo[0]), max(self.hi[0], other.hi[0])  # type: ignore[type-var]
            return self if (lo, hi) == (self.lo[0], self.hi[0]) else AxisRF((lo,), (hi,), self.shift)
        if self == other:
            return self
        if self.shift * other.period != other.shift * self.period:  # jumps differ (a Fraction is slow)
            return None
        period = self.period * other.period // gcd(self.period, other.period)
        if period > MAX_PERIOD:
            return None
        lo, hi = [], []
        for o in range(period):
            a, b = self.bounds(o), other.bounds(o)
            if a is None or b is None:
                lo.append((a or b)[0] if (a or b) else None)
                hi.append((a or b)[1] if (a or b) else None)
            else:
                lo.append(min(a[0], b[0]))
                hi.append(max(a[1], b[1]))
        return AxisRF(tuple(lo), tuple(hi), self.shift * period // self.period)

    def describe(self) -> str:
        return str(self.size)


_IDENTITY = AxisRF((0,), (0,), 1)

__all__ = ["MAX_PERIOD", "AxisRF", "AxisStep", "FieldRule", "Span"]
