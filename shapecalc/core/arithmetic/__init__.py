"""Output-size arithmetic on plain ints, one spatial axis at a time.

Convention: ``p`` is the TOTAL padding of both sides of an axis (``nn.Conv2d(padding=1)`` is
``p = 2``), because that is the form in which the formula is exact for asymmetric padding too.
Where PyTorch needs the left padding on its own (the ceil-mode rule, receptive fields) it is
``p // 2``: torch pads symmetrically, and ``padding='same'`` puts the odd pixel on the right.

Every function raises :class:`~shapecalc.core.errors.ShapeError` exactly where PyTorch raises, with
the numbers that broke, and never imports torch. An argument of the wrong type (``None``, a
string, a float, NaN, a bool) or beyond torch's 64-bit sizes raises
:class:`~shapecalc.core.errors.ArgumentError` naming the parameter; numpy integers are accepted and
become ``int``.

The rules are split by job: :mod:`.forward` (output sizes, dropped pixels, the shared argument
checks), :mod:`.inverse` (paddings and input sizes that give a target), :mod:`.receptive_field`
(:class:`AxisRF`), :mod:`.explain` (the substituted arithmetic) and :mod:`.window` (one axis
of a layer's window, normalised once: the one place where torch's per-side padding becomes
the total ``p``). Everything is re-exported
here: ``from shapecalc.core import arithmetic as ar; ar.conv_output_size(…)``.
"""

from __future__ import annotations

from shapecalc.core.argcheck import LARGEST
from shapecalc.core.arithmetic.explain import (
    explain_conv, explain_dropped, explain_pool, explain_tf_same, explain_transposed,
)
from shapecalc.core.arithmetic.forward import (
    adaptive_output_size, adaptive_windows, ceil_div, conv_output_size, dropped_pixels,
    effective_kernel, pool_output_size, same_padding, tf_same_padding, transposed_conv_output_size,
    window_conv_size, window_dropped_pixels,
)
from shapecalc.core.arithmetic.inverse import solve_input_sizes, solve_padding, solve_pool_padding, solve_transposed_padding
from shapecalc.core.arithmetic.receptive_field import AxisRF, AxisStep, FieldRule
from shapecalc.core.arithmetic.window import Window, total_padding

__all__ = [
    "LARGEST",
    "AxisRF",
    "AxisStep",
    "FieldRule",
    "Window",
    "adaptive_output_size",
    "adaptive_windows",
    "ceil_div",
    "conv_output_size",
    "dropped_pixels",
    "effective_kernel",
    "explain_conv",
    "explain_dropped",
    "explain_pool",
    "explain_tf_same",
    "explain_transposed",
    "pool_output_size",
    "same_padding",
    "solve_input_sizes",
    "solve_padding",
    "solve_pool_padding",
    "solve_transposed_padding",
    "tf_same_padding",
    "total_padding",
    "transposed_conv_output_size",
    "window_conv_size",
    "window_dropped_pixels",
]
