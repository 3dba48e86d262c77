"""Receptive fields along one axis: size, jump between outputs, and where the first one is
centred, carried through each window (conv, pool, transposed conv)."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from shapecalc.core.arithmetic.forward import effective_kernel


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Receptive field along one axis, in input pixels.

    ``size``: how many input pixels one output pixel sees; ``jump``: the distance in input
    pixels between neighbouring outputs; ``start``: the centre of the first output's field
    (it may be negative where padding is involved).
    """

    size: float
    jump: float
    start: float

    def through_window(self, k: int, s: int, p_left: int, d: int = 1) -> "AxisRF":
        """Field after a conv/pool window (the standard recurrence r' = r + (k_eff−1)·j)."""
        span = effective_kernel(k, d)
        return AxisRF(
            size=self.size + (span - 1) * self.jump,
            jump=self.jump * s,
            start=self.start + ((span - 1) / 2 - p_left) * self.jump,
        )

    def through_transposed(self, k: int, s: int, p_left: int, d: int = 1) -> "AxisRF":
        """Field after a transposed conv, whose outputs see different numbers of inputs.

        Output ``o`` gets input ``i`` through tap ``t`` when ``o = i·s + t·d − p_left``, so the
        inputs it sees lie in ``[(o + p_left − (span−1))/s, (o + p_left)/s]``: the centre is
        ``(o + p_left − (span−1)/2)/s``. Only taps ``t`` congruent modulo ``s/g``
        (``g = gcd(s, d)``) meet one output, so the widest fan-in spans
        ``floor((k−1)·g/s)·(d/g) + 1`` inputs (``ceil(k/s)`` at ``d = 1``): that is ``size``.
        """
        g = gcd(s, d)
        taps = ((k - 1) * g // s) * (d // g) + 1
        span = effective_kernel(k, d)
        return AxisRF(
            size=self.size + (taps - 1) * self.jump,
            jump=self.jump / s,
            start=self.start + (p_left - (span - 1) / 2) * self.jump / s,
        )

    def describe(self) -> str:
        return f"{_num(self.size)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}".rstrip("0")

__all__ = ["AxisRF"]
