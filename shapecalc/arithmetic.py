"""Output-size arithmetic on plain ints, one spatial axis at a time.

Convention: ``p`` is the TOTAL padding of both sides of an axis (``nn.Conv2d(padding=1)`` is
``p = 2``), because that is the form in which the formula is exact for asymmetric padding too.
Where PyTorch needs the left padding on its own (the ceil-mode rule, receptive fields) it is
``p // 2``: torch pads symmetrically, and ``padding='same'`` puts the odd pixel on the right.

Every function raises :class:`~shapecalc.errors.ShapeError` exactly where PyTorch raises, with
the numbers that broke, and never imports torch. An argument of the wrong type (``None``, a
string, a float, NaN, a bool) or beyond torch's 64-bit sizes raises
:class:`~shapecalc.errors.ArgumentError` naming the parameter; numpy integers are accepted and
become ``int``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from .argcheck import LARGEST, exact_int
from .argcheck import flag as _flag
from .errors import ConfigError, Reason, ShapeError

_MEANING = {
    "n": "the input size", "k": "the kernel size", "s": "the stride", "p": "the total padding",
    "d": "the dilation", "output_padding": "the output padding", "target": "the target size",
    "out": "the output size", "max_total": "the largest total padding",
}


def _int(param: str, value: object) -> int:
    return exact_int(param, value, _MEANING[param])


def effective_kernel(k: int, d: int = 1) -> int:
    """Span of a dilated kernel: ``d·(k−1)+1`` (a 3-tap kernel at dilation 2 covers 5 pixels)."""
    return _int("d", d) * (_int("k", k) - 1) + 1


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}", numbers={name: value})


def _check_window(n: int, k: int, s: int, p: int, d: int) -> None:
    _check_positive("kernel", k)
    _check_positive("stride", s)
    _check_positive("dilation", d)
    if p < 0:
        raise ConfigError(f"padding must be non-negative, got {p}", numbers={"padding": p})
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
    span = effective_kernel(k, d)
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
    n, s, p = _int("n", n), _int("s", s), _int("p", p)
    span = effective_kernel(k, d)
    if not _flag("ceil_mode", ceil_mode):
        return (n - span + p) % s
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)
    return max(0, n + p - ((out - 1) * s + span))


def explain_dropped(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> str:
    """The arithmetic of :func:`dropped_pixels` with the numbers substituted."""
    dropped = dropped_pixels(n, k, s, p, d, ceil_mode)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    span = effective_kernel(k, d)
    if not ceil_mode:
        return f"({n} − {span} + {p}) mod {s} = {dropped}"
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)
    return f"{n} + {p} − (({out} − 1)·{s} + {span}) = {dropped}"


def solve_padding(n: int, k: int, s: int, target: int, d: int = 1) -> range:
    """Every total padding ``p >= 0`` for which a convolution of ``n`` gives ``target``.

    The output is ``floor((n − span + p)/s) + 1``, so the answers form one run of ``s``
    consecutive integers, clipped at zero: a ``range``, so a stride of 10⁸ costs nothing. An
    empty range means no padding gives ``target`` (the input is already too large, or
    ``target < 1``).
    """
    n, s, target = _int("n", n), _int("s", s), _int("target", target)
    if target < 1:
        return range(0)
    low = s * (target - 1) - n + effective_kernel(k, d)
    return range(max(low, 0), max(low + s, 0))


def solve_pool_padding(
    n: int, k: int, s: int, target: int, d: int = 1, ceil_mode: bool = False,
    max_total: int | None = None,
) -> range:
    """Every total padding ``0 <= p <= max_total`` for which pooling ``n`` gives ``target``.

    Floor mode is the convolution's closed form. In ceil mode the output grows with ``p`` by
    at most 1 a step (torch's correction ``(out − 1)·s >= n + p//2`` takes back at most the
    step ``p`` just added), so the answers are one run as well: two binary searches find its
    ends in ``O(log max_total)`` evaluations of :func:`pool_output_size`.
    """
    target = _int("target", target)
    max_total = None if max_total is None else _int("max_total", max_total)
    if target < 1:
        return range(0)
    if not ceil_mode:
        found = solve_padding(n, k, s, target, d)
    else:
        limit = max_total if max_total is not None else s * target + effective_kernel(k, d)

        def out(p: int) -> int:
            try:
                return pool_output_size(n, k, s, p, d, ceil_mode=True)
            except ShapeError:  # the window does not fit yet: no output at all
                return 0

        low = _first(0, limit + 1, lambda p: out(p) >= target)
        high = _first(low, limit + 1, lambda p: out(p) > target)
        found = range(low, high)
    if max_total is not None:
        found = range(found.start, max(found.start, min(found.stop, max_total + 1)))
    return found


def _first(low: int, high: int, ok) -> int:
    """The smallest ``x`` in ``[low, high)`` with ``ok(x)`` (``ok`` monotone), else ``high``."""
    while low < high:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid + 1
    return low


def solve_transposed_padding(
    n: int, k: int, s: int, target: int, d: int = 1, output_padding: int = 0
) -> range:
    """The total padding (at most one) for which a transposed convolution of ``n`` gives ``target``.

    Padding removes pixels one for one: ``p = (n − 1)·s + d·(k − 1) + output_padding + 1 − target``.
    """
    n, s, target = _int("n", n), _int("s", s), _int("target", target)
    output_padding = _int("output_padding", output_padding)
    if target < 1:
        return range(0)
    p = (n - 1) * s + effective_kernel(k, d) + output_padding - target
    return range(p, p + 1) if p >= 0 else range(0)


def solve_input_sizes(out: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> range:
    """The input sizes ``n`` a convolution maps to ``out`` (the inverse of the forward formula)."""
    out, s, p = _int("out", out), _int("s", s), _int("p", p)
    if out < 1:
        return range(0)
    low = s * (out - 1) + effective_kernel(k, d) - p
    return range(max(low, 1), max(low + s, 1))


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


# ---------------------------------------------------------------- explanations
# The explanation strings substitute the user's numbers into the same formula the functions
# evaluate, so a student can redo each step by hand.


def explain_conv(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> list[str]:
    """The arithmetic of :func:`conv_output_size`, one line a step."""
    out = conv_output_size(n, k, s, p, d)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    lines = []
    if d != 1:
        lines.append(f"k_eff = d·(k − 1) + 1 = {d}·({k} − 1) + 1 = {effective_kernel(k, d)}")
    span = effective_kernel(k, d)
    total = n - span + p + s
    k_name = "k_eff" if d != 1 else "k"
    lines.append(f"out = floor((n − {k_name} + p + s) / s)")
    lines.append(
        f"    = floor(({n} − {span} + {p} + {s}) / {s}) = floor({total} / {s}) = {out}"
    )
    return lines


def explain_pool(
    n: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> list[str]:
    """The arithmetic of :func:`pool_output_size`, with the ceil-mode correction spelled out."""
    if not _flag("ceil_mode", ceil_mode):
        return explain_conv(n, k, s, p, d)
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    span = effective_kernel(k, d)
    raw = -(-(n - span + p) // s) + 1
    lines = [
        "out = ceil((n − k_eff + p) / s) + 1",
        f"    = ceil(({n} − {span} + {p}) / {s}) + 1 = {raw}",
    ]
    if out != raw:
        lines.append(
            f"last window would start at ({raw} − 1)·{s} = {(raw - 1) * s} ≥ n + p_left = "
            f"{n + p // 2}, inside the right padding only: torch drops it → {out}"
        )
    return lines


def explain_transposed(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> list[str]:
    """The arithmetic of :func:`transposed_conv_output_size`."""
    out = transposed_conv_output_size(n, k, s, p, d, output_padding)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    output_padding = _int("output_padding", output_padding)
    return [
        "out = (n − 1)·s − p + d·(k − 1) + output_padding + 1",
        f"    = ({n} − 1)·{s} − {p} + {d}·({k} − 1) + {output_padding} + 1 = {out}",
    ]


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling division (``math.ceil`` on ints without floats)."""
    return -(-a // b)


__all__ = [
    "LARGEST",
    "AxisRF",
    "adaptive_output_size",
    "adaptive_windows",
    "ceil_div",
    "conv_output_size",
    "dropped_pixels",
    "effective_kernel",
    "explain_conv",
    "explain_dropped",
    "explain_pool",
    "explain_transposed",
    "pool_output_size",
    "same_padding",
    "solve_input_sizes",
    "solve_padding",
    "solve_pool_padding",
    "solve_transposed_padding",
    "transposed_conv_output_size",
]
