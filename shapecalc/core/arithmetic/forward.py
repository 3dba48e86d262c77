"""Forward sizes: what one conv, pool, transposed conv or adaptive pool gives along one axis,
how much padding ``'same'`` means, and which pixels no window reads.

The argument checks every formula shares live here too (:func:`checked_int`, the window
checks), so the inverse solvers and the explanations check exactly as the forward rules do.
"""

from __future__ import annotations

from shapecalc.core.argcheck import exact_int
from shapecalc.core.argcheck import flag as _flag
from shapecalc.core.errors import ArgumentError, ConfigError, Reason, ShapeError

_MEANING = {
    "n": "the input size", "k": "the kernel size", "s": "the stride", "p": "the total padding",
    "d": "the dilation", "output_padding": "the output padding", "target": "the target size",
    "out": "the output size", "max_total": "the largest total padding",
    "per_side": "the padding on each side",
}


def checked_int(param: str, value: object) -> int:
    """``value`` as an exact int, or :class:`~shapecalc.core.errors.ArgumentError` naming ``param``
    (``n``, ``k``, ``s`` …) in words."""
    return exact_int(param, value, _MEANING[param])


_int = checked_int


def checked_at_least(param: str, value: object, low: int) -> int:
    """:func:`checked_int`, and at least ``low``: an :class:`ArgumentError` naming ``param``
    otherwise (``dropped_pixels(s=0)`` was a ``ZeroDivisionError``, ``effective_kernel(-1)``
    a span of −1)."""
    number = checked_int(param, value)
    if number < low:
        raise ArgumentError(param, f"{_MEANING[param]} must be ≥ {low}, got {number}")
    return number


def effective_kernel(k: int, d: int = 1) -> int:
    """Span of a dilated kernel: ``d·(k−1)+1`` (a 3-tap kernel at dilation 2 covers 5 pixels)."""
    d = checked_at_least("d", d, 1)
    return _span(checked_at_least("k", k, 1), d)


def _span(k: int, d: int) -> int:
    return d * (k - 1) + 1


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}", numbers={name: value})


def _check_window(n: int, k: int, s: int, p: int, d: int) -> None:
    _check_positive("kernel", k)
    _check_positive("stride", s)
    _check_positive("dilation", d)
    if p < 0:
        raise ConfigError(f"padding must be non-negative, got {p}", numbers={"padding": p})
    _check_size(n)


def _check_size(n: int) -> None:
    if n < 1:
        raise ShapeError(f"input size must be at least 1, got {n}", numbers={"input": n},
                         reason=Reason.TOO_SMALL)


def conv_output_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Convolution output along one axis: ``floor((n − d·(k−1) − 1 + p + s) / s)``.

    With ``d = 1`` this is the textbook ``floor((n − k + p + s) / s)``. Torch refuses a kernel
    that does not fit in the padded input, so this raises there instead of returning ``<= 0``.
    """
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    _check_window(n, k, s, p, d)
    return _conv_size(n, k, s, p, d)


def window_conv_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """:func:`conv_output_size` for a :class:`~shapecalc.core.arithmetic.window.Window`'s
    kernel, stride, padding and dilation, which were checked when the window was made: only
    ``n`` is checked here (the graph pass asks this of every conv, and the nine argument
    checks were most of the public function's cost)."""
    n = _int("n", n)
    _check_size(n)
    return _conv_size(n, k, s, p, d)


def _conv_size(n: int, k: int, s: int, p: int, d: int) -> int:
    span = _span(k, d)
    if n + p < span:
        raise ShapeError(
            f"kernel span {span} is larger than the padded input {n} + {p} = {n + p}",
            numbers={"input": n, "kernel": k, "dilation": d, "padding": p, "span": span},
            reason=Reason.TOO_SMALL,
        )
    return (n - span + p + s) // s


def pool_output_size(
    n: int,
    k: int,
    s: int | None = None,
    p: int = 0,
    d: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Pooling output along one axis, PyTorch's rule included.

    Floor mode is the convolution formula. Ceil mode rounds up, then drops the last window
    when it would start beyond the input and its left padding (torch's
    ``pooling_output_shape``), so a window never lies wholly in the right padding.
    ``s`` defaults to ``k`` as in ``nn.MaxPool2d``. The half-kernel padding limit is checked
    by the layer, which knows whether torch compares it against ``k`` or the dilated span.
    """
    n, k, p, d = _int("n", n), _int("k", k), _int("p", p), _int("d", d)
    s = k if s is None else _int("s", s)
    ceil_mode = _flag("ceil_mode", ceil_mode)
    _check_window(n, k, s, p, d)
    span = effective_kernel(k, d)
    numerator = n + p - span + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= n + p // 2:
        out -= 1
    if out < 1:
        raise ShapeError(
            f"output size {out} is too small: kernel span {span} does not fit "
            f"in the padded input {n} + {p} = {n + p}",
            numbers={"input": n, "kernel": k, "stride": s, "padding": p, "output": out},
            reason=Reason.TOO_SMALL,
        )
    return out


def transposed_conv_output_size(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> int:
    """Transposed convolution: ``(n − 1)·s − p + d·(k − 1) + output_padding + 1``.

    ``output_padding`` picks among the input sizes a strided convolution maps to the same
    output, so torch requires it to be smaller than the stride or the dilation.
    """
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    output_padding = _int("output_padding", output_padding)
    _check_window(n, k, s, p, d)
    if output_padding < 0 or output_padding >= max(s, d):
        raise ConfigError(
            f"output_padding must be smaller than the stride ({s}) or the dilation ({d}), "
            f"got {output_padding}",
            numbers={"output_padding": output_padding, "stride": s, "dilation": d},
        )
    out = (n - 1) * s - p + effective_kernel(k, d) + output_padding
    if out < 1:
        raise ShapeError(
            f"output size {out} is too small: padding {p} removes more than the "
            f"transposed convolution produces",
            numbers={"input": n, "kernel": k, "stride": s, "padding": p, "output": out},
        )
    return out


def adaptive_windows(n: int, out: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` windows torch's adaptive pooling uses: they tile ``n`` into ``out``."""
    n, out = _int("n", n), _int("out", out)
    return [((i * n) // out, -((-(i + 1) * n) // out)) for i in range(out)]


def adaptive_output_size(n: int, out: int | None) -> int:
    """Adaptive pooling returns what was asked for (``None`` keeps the input size)."""
    n = _int("n", n)
    out = None if out is None else _int("out", out)
    if n < 1:
        raise ShapeError(f"input size must be at least 1, got {n}", numbers={"input": n},
                         reason=Reason.TOO_SMALL)
    if out is None:
        return n
    if out < 0:
        raise ConfigError(f"output_size must be non-negative, got {out}", numbers={"output": out})
    return out


def same_padding(k: int, d: int = 1) -> tuple[int, int]:
    """PyTorch's ``padding='same'``: total ``d·(k−1)``, the odd pixel on the right."""
    total = effective_kernel(k, d) - 1
    return total // 2, total - total // 2


def tf_same_padding(n: int, k: int, s: int = 1, d: int = 1) -> tuple[int, int]:
    """TensorFlow's ``'SAME'`` padding for input size ``n``, as (before, after) the input.

    The total is what makes the output ``ceil(n / s)``: ``max((ceil(n/s) − 1)·s + d·(k − 1) + 1
    − n, 0)``, the odd pixel after the input (timm's ``get_same_padding`` and ``pad_same``,
    which pad with ``F.pad`` and then run the layer with padding 0). Unlike torch's
    ``padding='same'`` it depends on the input's size, so a strided layer has it too.
    """
    n, s = checked_at_least("n", n, 1), checked_at_least("s", s, 1)
    total = max((ceil_div(n, s) - 1) * s + effective_kernel(k, d) - n, 0)
    return total // 2, total - total // 2


def dropped_pixels(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> int:
    """Rows/columns of the padded input after the end of the last window: no window reads them.

    Floor mode: ``(n − d·(k−1) − 1 + p) mod s``, what the floor in the output formula
    discards (AlexNet's first layer at 224, k=11, s=4, p=2, leaves 3). Ceil mode keeps a
    partial last window, so usually nothing is left, but torch drops a window that would start
    in the right padding only, and what it would have read stays unread: ``MaxPool2d(2, 3,
    ceil_mode=True)`` at 9 gives 3 windows ending at row 8, so row 8 is never read.
    """
    n, s, p = checked_at_least("n", n, 1), checked_at_least("s", s, 1), checked_at_least("p", p, 0)
    span = effective_kernel(k, d)
    if not _flag("ceil_mode", ceil_mode):
        return _floor_dropped(n, span, s, p)
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)
    return max(0, n + p - ((out - 1) * s + span))


def window_dropped_pixels(n: int, k: int, s: int, p: int, d: int) -> int:
    """:func:`dropped_pixels` in floor mode for a window's checked values (as
    :func:`window_conv_size`: only ``n`` is checked)."""
    return _floor_dropped(checked_at_least("n", n, 1), _span(k, d), s, p)


def _floor_dropped(n: int, span: int, s: int, p: int) -> int:
    return (n - span + p) % s


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling division (``math.ceil`` on ints without floats)."""
    return -(-a // b)


__all__ = [
    "adaptive_output_size", "adaptive_windows", "ceil_div", "checked_at_least", "checked_int",
    "conv_output_size",
    "dropped_pixels", "effective_kernel", "pool_output_size", "same_padding", "tf_same_padding",
    "transposed_conv_output_size", "window_conv_size", "window_dropped_pixels",
]
