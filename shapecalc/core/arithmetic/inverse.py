"""Inverse solvers: every padding that gives a target size, every input size that gives an
output. Each answer is a ``range`` (the answers form one run of consecutive integers), found in
closed form or by binary search over the forward rule, so a stride of 10⁸ costs nothing.
"""

from __future__ import annotations

from typing import Callable

from shapecalc.core.argcheck import flag
from shapecalc.core.errors import ShapeError
from shapecalc.core.arithmetic.forward import checked_at_least
from shapecalc.core.arithmetic.forward import checked_int as _int
from shapecalc.core.arithmetic.forward import effective_kernel, pool_output_size


def solve_padding(n: int, k: int, s: int, target: int, d: int = 1) -> range:
    """Every total padding ``p >= 0`` for which a convolution of ``n`` gives ``target``.

    The output is ``floor((n − span + p)/s) + 1``, so the answers form one run of ``s``
    consecutive integers, clipped at zero: a ``range``, so a stride of 10⁸ costs nothing. An
    empty range means no padding gives ``target`` (the input is already too large, or
    ``target < 1``).
    """
    n, s, target = checked_at_least("n", n, 1), checked_at_least("s", s, 1), _int("target", target)
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
    target, ceil_mode = _int("target", target), flag("ceil_mode", ceil_mode)
    max_total = None if max_total is None else checked_at_least("max_total", max_total, 0)
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

        low = first_true(0, limit + 1, lambda p: out(p) >= target)
        high = first_true(low, limit + 1, lambda p: out(p) > target)
        found = range(low, high)
    if max_total is not None:
        found = range(found.start, max(found.start, min(found.stop, max_total + 1)))
    return found


def preferred_padding(found: range) -> int:
    """Of the TOTAL paddings that work, the one to use: the smallest even total (torch's
    symmetric ``padding=total // 2``) if there is one, else the smallest."""
    first_even = found.start + found.start % 2
    return first_even if first_even < found.stop else found.start


def first_true(low: int, high: int, ok: Callable[[int], bool],
               give_up: Callable[[], bool] | None = None) -> int | None:
    """The smallest ``x`` in ``[low, high)`` with ``ok(x)``, else ``high``, by bisection: ``ok``
    must be monotone (False then True) over the range. ``give_up()``, asked before each probe,
    ends the search with ``None`` (a time budget). The one bisection of the package."""
    while low < high:
        if give_up is not None and give_up():
            return None
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
    n, s, target = checked_at_least("n", n, 1), checked_at_least("s", s, 1), _int("target", target)
    output_padding = checked_at_least("output_padding", output_padding, 0)
    if target < 1:
        return range(0)
    p = (n - 1) * s + effective_kernel(k, d) + output_padding - target
    return range(p, p + 1) if p >= 0 else range(0)


def solve_input_sizes(out: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> range:
    """The input sizes ``n`` a convolution maps to ``out`` (the inverse of the forward formula)."""
    out, s, p = _int("out", out), checked_at_least("s", s, 1), checked_at_least("p", p, 0)
    if out < 1:
        return range(0)
    low = s * (out - 1) + effective_kernel(k, d) - p
    return range(max(low, 1), max(low + s, 1))


__all__ = ["first_true", "preferred_padding", "solve_input_sizes", "solve_padding", "solve_pool_padding", "solve_transposed_padding"]
