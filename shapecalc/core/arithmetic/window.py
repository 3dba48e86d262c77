"""One axis of a sliding window (convolution, pooling, transposed convolution), normalised once.

A layer's arguments arrive in torch's form: ``padding=1`` means one pixel on EACH side, a
tuple gives one value per axis, ``padding='same'`` puts an odd pixel after the input. The
formulas count differently: ``p`` in ``floor((n − k + p + s) / s)`` is the TOTAL padding of
both sides, and receptive fields need the part before the input on its own. :class:`Window`
is the one place that turns one into the other (:meth:`Window.per_side`,
:meth:`Window.from_total`) and checks the values, so a layer builds its windows once, when it
is made, and every rule after that reads ``p`` (total) and ``p_left`` from the same value.

TensorFlow's ``'SAME'`` padding (timm's ``Conv2dSame``, ``MaxPool2dSame`` …) depends on the
input's size, so such a window holds no padding of its own but ``tf_same``, and
:meth:`Window.at` gives the window a given input size meets; rules read that one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from shapecalc.core.arithmetic.forward import checked_int, effective_kernel, tf_same_padding
from shapecalc.core.arithmetic.receptive_field import AxisStep
from shapecalc.core.errors import ConfigError


def total_padding(per_side: int) -> int:
    """Torch's ``padding=`` (each side) as the formulas count it: both sides together. An exact
    int of any sign (a negative one is refused by the layer, in one place for every kind)."""
    return 2 * checked_int("per_side", per_side)


@dataclass(frozen=True, slots=True)
class Window:
    """One spatial axis of a sliding-window layer, in the arithmetic's terms.

    ``p`` is the TOTAL padding of both sides and ``p_left`` the part before the input (torch
    pads symmetrically; an odd total, as ``padding='same'`` or a solved padding gives, has its
    odd pixel after). ``output_padding`` is a transposed convolution's, ``ceil_mode`` a pool's.
    ``tf_same``: the padding is TensorFlow's ``'SAME'`` for whatever size comes in (``p`` and
    ``p_left`` are then 0 until :meth:`at` fills them in). Kernel, stride and dilation are at
    least 1 and the padding at least 0, checked here once for every window layer.
    """

    k: int
    s: int = 1
    p: int = 0
    p_left: int = 0
    d: int = 1
    output_padding: int = 0
    ceil_mode: bool = False
    tf_same: bool = False

    def __post_init__(self) -> None:
        for name, value in (("kernel_size", self.k), ("stride", self.s), ("dilation", self.d)):
            if value < 1:
                raise ConfigError(f"{name} must be positive, got {value}", numbers={name: value})
        if self.p_left < 0 or self.p < self.p_left:
            shown = self.p_left if self.p_left < 0 else self.p - self.p_left
            raise ConfigError(f"padding must be non-negative, got {shown}", numbers={"padding": shown})

    @classmethod
    def per_side(cls, k: int, s: int = 1, padding: int = 0, d: int = 1, **options) -> "Window":
        """Torch's form: ``padding`` pixels on each side (``nn.Conv2d(padding=1)`` is p = 2)."""
        return cls(k, s, total_padding(padding), padding, d, **options)

    @classmethod
    def from_total(cls, k: int, s: int = 1, total: int = 0, d: int = 1, **options) -> "Window":
        """The formulas' form: ``total`` padding of both sides, the odd pixel after the input."""
        return cls(k, s, total, total // 2, d, **options)

    def with_total(self, total: int) -> "Window":
        """This window with another TOTAL padding (the odd pixel after the input)."""
        return self.with_padding(total, total // 2)

    def with_padding(self, total: int, left: int) -> "Window":
        """This window with ``total`` padding, ``left`` of it before the input (checked as any
        window is). Spelled out rather than ``dataclasses.replace``, which reads the fields
        anew on every call: every conv and pool a model builds pads its windows here."""
        return Window(self.k, self.s, total, left, self.d, self.output_padding, self.ceil_mode,
                      self.tf_same)

    def at(self, n: int) -> "Window":
        """The window input size ``n`` meets: this one, or for ``tf_same`` the one padded as
        TensorFlow's ``'SAME'`` pads ``n`` (timm pads first with ``F.pad``, then runs the layer
        unpadded; sizes and positions are the same as padding inside, ceil mode included,
        because a ``'SAME'``-padded axis has no partial last window)."""
        return _padded_at(self, n) if self.tf_same else self

    @property
    def p_right(self) -> int:
        return self.p - self.p_left

    @property
    def span(self) -> int:
        """The dilated kernel's extent: ``d·(k − 1) + 1``."""
        return effective_kernel(self.k, self.d)

    def step(self) -> AxisStep:
        """What output ``o`` reads on this axis (its receptive-field step)."""
        return AxisStep.window(self.k, self.s, self.p_left, self.d)

    def transposed_step(self) -> AxisStep:
        """The same for a transposed convolution, which scatters instead of gathering."""
        return AxisStep.transposed(self.k, self.s, self.p_left, self.d)


@lru_cache(maxsize=4096)
def _padded_at(window: Window, n: int) -> Window:
    # A model meets few distinct (window, size) pairs and asks about each for many rows.
    before, after = tf_same_padding(n, window.k, window.s, window.d)
    return dataclasses.replace(window, p=before + after, p_left=before, tf_same=False)


__all__ = ["Window", "total_padding"]
