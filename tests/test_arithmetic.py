"""The per-axis formulas: properties of the arithmetic first, the textbook examples second.

These are pure-int checks (no torch): the forward formula against its definition, each inverse
against the forward by brute force, and the explanation strings against the functions.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shapecalc.core import arithmetic as ar
from shapecalc.core.errors import ConfigError, ShapeError

sizes = st.integers(1, 300)
kernels = st.integers(1, 15)
halves = st.integers(0, 7)  # per-side pooling padding, filtered to <= k // 2
strides = st.integers(1, 6)
paddings = st.integers(0, 12)  # TOTAL padding of both sides
dilations = st.integers(1, 4)


def windows_that_fit(n: int, k: int, s: int, p: int, d: int) -> int:
    """The definition the formula encodes: count window starts that fit in the padded input."""
    span = ar.effective_kernel(k, d)
    return sum(1 for start in range(0, n + p, s) if start + span <= n + p)


# ------------------------------------------------------------------ forward
@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_conv_output_counts_the_windows_that_fit(n, k, s, p, d):
    span = ar.effective_kernel(k, d)
    if n + p < span:
        with pytest.raises(ShapeError) as info:
            ar.conv_output_size(n, k, s, p, d)
        assert info.value.numbers["span"] == span
    else:
        assert ar.conv_output_size(n, k, s, p, d) == windows_that_fit(n, k, s, p, d)


@given(n=sizes, k=kernels, s=strides, p=paddings)
def test_seed_formula_is_the_general_one_at_dilation_one(n, k, s, p):
    assume(n + p >= k)
    assert ar.conv_output_size(n, k, s, p) == math.floor((n - k + p + s) / s)
    assert ar.conv_output_size(n, k, s, p, 1) == (n - 1 * (k - 1) - 1 + p + s) // s


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_floor_pooling_is_the_conv_formula(n, k, s, p, d):
    assume(n + p >= ar.effective_kernel(k, d))
    assert ar.pool_output_size(n, k, s, p, d) == ar.conv_output_size(n, k, s, p, d)


@given(n=sizes, k=kernels, s=strides, half=halves, d=dilations)
def test_ceil_pooling_last_window_starts_inside_input_or_left_padding(n, k, s, half, d):
    """Torch's rule: round up, but every window must START before ``n + p_left``.

    (Within torch's domain: pooling padding at most half the kernel, checked by the layers.)
    """
    assume(half <= k // 2)
    p = 2 * half
    span = ar.effective_kernel(k, d)
    assume(n + p >= span)
    out = ar.pool_output_size(n, k, s, p, d, ceil_mode=True)
    floor_out = ar.pool_output_size(n, k, s, p, d)
    assert floor_out <= out <= floor_out + 1
    assert (out - 1) * s < n + half  # the last window starts inside input or left padding
    if out == floor_out + 1:  # the extra window overhangs the padded input
        assert (out - 1) * s + span > n + p


def test_ceil_mode_examples():
    assert ar.pool_output_size(5, 2, 2, 0, ceil_mode=True) == 3  # partial last window kept
    assert ar.pool_output_size(5, 2, 2, 0) == 2
    # ceil((4 + 2 − 2)/2) + 1 = 3, but window 2 would start at 4 = n + p_left: dropped.
    assert ar.pool_output_size(4, 2, 2, 2, ceil_mode=True) == 3
    assert ar.pool_output_size(3, 2, 2, 2, ceil_mode=True) == 2


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations, op=st.integers(0, 5))
def test_transposed_conv_inverts_the_conv_size(n, k, s, p, d, op):
    """A transposed conv's output is an input size that the forward conv maps back to ``n``."""
    assume(op < max(s, d))
    try:
        out = ar.transposed_conv_output_size(n, k, s, p, d, op)
    except ShapeError:
        assert (n - 1) * s - p + ar.effective_kernel(k, d) + op < 1
        return
    assert out == (n - 1) * s - p + d * (k - 1) + op + 1
    if op < s:  # output_padding picks one of the ``s`` sizes that convolve back to n
        assert ar.conv_output_size(out, k, s, p, d) == n


@given(n=sizes, k=kernels, s=strides, d=dilations, op=st.integers(0, 8))
def test_output_padding_must_be_below_stride_or_dilation(n, k, s, d, op):
    if op >= max(s, d):
        with pytest.raises(ConfigError):
            ar.transposed_conv_output_size(n, k, s, 0, d, op)
    else:
        ar.transposed_conv_output_size(n, k, s, 0, d, op)


@pytest.mark.parametrize("bad", [dict(k=0), dict(s=0), dict(d=0), dict(p=-1), dict(k=-2)])
def test_invalid_arguments_raise_config_errors_naming_them(bad):
    args = dict(n=10, k=3, s=1, p=0, d=1) | bad
    with pytest.raises(ConfigError) as info:
        ar.conv_output_size(**args)
    (name,) = info.value.numbers
    assert name in {"kernel", "stride", "dilation", "padding"}


def test_input_smaller_than_one_is_a_shape_error():
    with pytest.raises(ShapeError, match="at least 1"):
        ar.conv_output_size(0, 1)


# ------------------------------------------------------------------ adaptive / same
@given(n=st.integers(1, 200), out=st.integers(1, 60))
def test_adaptive_windows_cover_the_input_in_order(n, out):
    windows = ar.adaptive_windows(n, out)
    assert len(windows) == out == ar.adaptive_output_size(n, out)
    assert windows[0][0] == 0 and windows[-1][1] == n
    for (a0, a1), (b0, b1) in zip(windows, windows[1:]):
        assert a0 <= b0 and a1 <= b1 and b0 <= a1  # monotone, no gaps
    assert all(e > s for s, e in windows)


@given(k=kernels, d=dilations, n=sizes)
def test_same_padding_keeps_the_size_with_the_odd_pixel_right(k, d, n):
    left, right = ar.same_padding(k, d)
    assert right - left in (0, 1)
    assert ar.conv_output_size(n, k, 1, left + right, d) == n


# ------------------------------------------------------------------ inverses
@given(n=sizes, k=kernels, s=strides, d=dilations, target=st.integers(-1, 80))
def test_solve_padding_returns_exactly_the_paddings_that_work(n, k, s, d, target):
    span = ar.effective_kernel(k, d)
    brute = []
    for p in range(0, span + s * (target + 1) + 2):
        if n + p >= span and ar.conv_output_size(n, k, s, p, d) == target:
            brute.append(p)
    found = ar.solve_padding(n, k, s, target, d)
    assert isinstance(found, range) and list(found) == brute


def test_solve_padding_examples():
    assert ar.solve_padding(224, 11, 4, 54) == range(0, 3)  # d2l's p=2 (per side 1) is one of three
    assert ar.solve_padding(32, 3, 1, 32) == range(2, 3)  # 'same'
    assert ar.solve_padding(10, 3, 1, 20) == range(12, 13)
    assert ar.solve_padding(224, 3, 1, 300) == range(78, 79)
    assert not ar.solve_padding(10, 3, 1, 5)  # already too large without padding


def test_solve_padding_with_a_huge_stride_is_a_range_not_a_list():
    found = ar.solve_padding(5, 3, 100_000_000, 1)
    assert found == range(0, 99_999_998) and len(found) == 99_999_998
    found = ar.solve_pool_padding(5, 3, 10**18, 1, ceil_mode=True, max_total=9 * 10**18)
    assert found.start == 0 and found.stop > 10**17  # binary search: no list, no loop over p


def _pool_or_zero(n, k, s, p, d, ceil):
    try:
        return ar.pool_output_size(n, k, s, p, d, ceil)
    except ShapeError:
        return 0


@given(n=st.integers(1, 60), k=kernels, s=strides, d=dilations, ceil=st.booleans(),
       limit=st.integers(0, 20), target=st.integers(-1, 40))
def test_solve_pool_padding_is_exactly_the_brute_force_answer(n, k, s, d, ceil, limit, target):
    brute = [p for p in range(limit + 1) if target >= 1 and _pool_or_zero(n, k, s, p, d, ceil) == target]
    found = ar.solve_pool_padding(n, k, s, target, d, ceil, max_total=limit)
    assert isinstance(found, range) and list(found) == brute


@given(n=st.integers(1, 60), k=kernels, s=strides, d=dilations, p=st.integers(0, 30))
def test_ceil_mode_output_grows_by_at_most_one_per_padding_step(n, k, s, d, p):
    # The property the ceil-mode solver's binary search rests on.
    step = _pool_or_zero(n, k, s, p + 1, d, True) - _pool_or_zero(n, k, s, p, d, True)
    assert step in (0, 1)


@given(n=st.integers(1, 40), k=kernels, s=strides, d=dilations, op=st.integers(0, 3),
       target=st.integers(-1, 300))
def test_solve_transposed_padding_is_the_inverse(n, k, s, d, op, target):
    assume(op < max(s, d))
    brute = []
    for p in range(0, n * s + d * k + op + 2):
        try:
            if ar.transposed_conv_output_size(n, k, s, p, d, op) == target:
                brute.append(p)
        except ShapeError:
            pass
    assert list(ar.solve_transposed_padding(n, k, s, target, d, op)) == brute


@given(out=st.integers(-1, 80), k=kernels, s=strides, p=paddings, d=dilations)
def test_solve_input_sizes_is_the_preimage_of_the_forward(out, k, s, p, d):
    span = ar.effective_kernel(k, d)
    brute = [n for n in range(1, s * (out + 1) + span + 2)
             if n + p >= span and ar.conv_output_size(n, k, s, p, d) == out]
    assert list(ar.solve_input_sizes(out, k, s, p, d)) == brute


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_dropped_pixels_are_what_the_last_window_leaves(n, k, s, p, d):
    span = ar.effective_kernel(k, d)
    assume(n + p >= span)
    out = ar.conv_output_size(n, k, s, p, d)
    dropped = ar.dropped_pixels(n, k, s, p, d)
    assert dropped == n + p - span - (out - 1) * s
    assert 0 <= dropped < s


@given(n=st.integers(1, 60), k=kernels, s=strides, half=halves, d=dilations)
def test_ceil_mode_uncovered_rows_are_what_no_window_reads(n, k, s, half, d):
    p = 2 * min(half, k // 2)
    out = _pool_or_zero(n, k, s, p, d, True)
    assume(out > 0)
    span = ar.effective_kernel(k, d)
    read = set()
    for i in range(out):  # every row of the padded input some window touches
        read.update(range(i * s, i * s + span))
    unread_at_end = 0
    for row in reversed(range(n + p)):
        if row in read:
            break
        unread_at_end += 1
    assert ar.dropped_pixels(n, k, s, p, d, ceil_mode=True) == unread_at_end
    assert ar.explain_dropped(n, k, s, p, d, True).endswith(f"= {unread_at_end:,}")


def test_ceil_mode_maxpool_2_3_at_9_never_reads_row_8():
    assert ar.pool_output_size(9, 2, 3, 0, 1, True) == 3
    assert ar.dropped_pixels(9, 2, 3, 0, 1, ceil_mode=True) == 1


def test_alexnet_first_conv_at_224_drops_three():
    assert ar.conv_output_size(224, 11, 4, 2) == 54
    assert ar.dropped_pixels(224, 11, 4, 2) == 3
    assert ar.dropped_pixels(227, 11, 4, 0) == 0  # the paper's 227 fits exactly


def test_seed_get_output_size_checks():
    """The d2l seed's two checks: 224 → 54 (conv1) and 54 → 26 (pool1)."""
    assert ar.conv_output_size(224, 11, 4, 2) == 54
    assert ar.pool_output_size(54, 3, 2) == 26


# ------------------------------------------------------------------ explanations
def _last_number(line: str) -> int:
    """The last number of an explanation line, thousands separators and all (``1,234``)."""
    return int(re.findall(r"-?\d+(?:,\d{3})*", line)[-1].replace(",", ""))


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_explain_conv_substitutes_the_numbers_and_ends_at_the_result(n, k, s, p, d):
    assume(n + p >= ar.effective_kernel(k, d))
    lines = ar.explain_conv(n, k, s, p, d)
    text = "\n".join(lines)
    span = ar.effective_kernel(k, d)
    assert f"({n} − {span} + {p} + {s}) / {s}" in text
    assert f"floor({n - span + p + s} / {s})" in text
    assert _last_number(lines[-1]) == ar.conv_output_size(n, k, s, p, d)
    assert (f"{d:,}·({k:,} − 1) + 1 = {span:,}" in text) == (d != 1)


def test_explain_conv_seed_example():
    assert ar.explain_conv(224, 11, 4, 2)[-1].strip() == (
        "= floor((224 − 11 + 2 + 4) / 4) = floor(219 / 4) = 54"
    )


@given(n=sizes, k=kernels, s=strides, half=halves, d=dilations, ceil=st.booleans())
def test_explain_pool_ends_at_the_result(n, k, s, half, d, ceil):
    assume(half <= k // 2)
    p = 2 * half
    assume(n + p >= ar.effective_kernel(k, d))
    lines = ar.explain_pool(n, k, s, p, d, ceil)
    out = ar.pool_output_size(n, k, s, p, d, ceil)
    assert _last_number(lines[-1]) == out
    assert f"({n:,} − {ar.effective_kernel(k, d):,} + {p:,}" in "\n".join(lines)
    if ceil and out != -(-(n - ar.effective_kernel(k, d) + p) // s) + 1:
        assert "drops it" in lines[-1]


@given(n=sizes, k=kernels, s=strides, p=paddings, d=dilations, op=st.integers(0, 3))
def test_explain_transposed_ends_at_the_result(n, k, s, p, d, op):
    assume(op < max(s, d))
    try:
        out = ar.transposed_conv_output_size(n, k, s, p, d, op)
    except ShapeError:
        return
    lines = ar.explain_transposed(n, k, s, p, d, op)
    assert f"({n:,} − 1)·{s:,} − {p:,} + {d:,}·({k:,} − 1) + {op:,} + 1" in lines[-1]
    assert _last_number(lines[-1]) == out


@given(a=st.integers(-1000, 1000), b=st.integers(1, 50))
def test_ceil_div(a, b):
    assert ar.ceil_div(a, b) == math.ceil(a / b)


# ------------------------------------------------------------------ argument types (library API)
BAD_VALUES = [None, "3", 3.0, float("nan"), float("inf"), True, [3], 10**5000, -(10**30)]
PUBLIC = [
    ("conv_output_size", (224, 11, 4, 2, 1), ("n", "k", "s", "p", "d")),
    ("pool_output_size", (54, 3, 2, 0, 1), ("n", "k", "s", "p", "d")),
    ("transposed_conv_output_size", (28, 3, 2, 2, 1, 1), ("n", "k", "s", "p", "d", "output_padding")),
    ("dropped_pixels", (224, 11, 4, 2, 1), ("n", "k", "s", "p", "d")),
    ("solve_padding", (224, 11, 4, 56, 1), ("n", "k", "s", "target", "d")),
    ("solve_input_sizes", (54, 11, 4, 2, 1), ("out", "k", "s", "p", "d")),
    ("effective_kernel", (3, 2), ("k", "d")),
    ("same_padding", (3, 2), ("k", "d")),
    ("explain_conv", (224, 11, 4, 2, 1), ("n", "k", "s", "p", "d")),
    ("explain_transposed", (28, 3, 2, 2, 1, 1), ("n", "k", "s", "p", "d", "output_padding")),
]


@pytest.mark.parametrize("name, args, params", PUBLIC, ids=[p[0] for p in PUBLIC])
@pytest.mark.parametrize("bad", BAD_VALUES, ids=[f"{type(v).__name__}{i}" for i, v in enumerate(BAD_VALUES)])
def test_public_functions_refuse_non_integers_naming_the_parameter(name, args, params, bad):
    from shapecalc.core.errors import ArgumentError, ShapecalcError

    func = getattr(ar, name)
    for i, param in enumerate(params):
        if bad is None and (name, param) == ("pool_output_size", "s"):
            continue  # None is the documented default: the stride is the kernel
        call = list(args)
        call[i] = bad
        with pytest.raises(ArgumentError) as info:
            func(*call)
        assert isinstance(info.value, ShapecalcError) and info.value.param == param
        text = str(info.value)
        assert text.startswith(f"{param}: ") and "\n" not in text and len(text) < 200


def test_numpy_integers_are_plain_ints():
    np = pytest.importorskip("numpy")
    out = ar.conv_output_size(np.int64(224), np.int32(11), np.int64(4), np.int16(2))
    assert out == 54 and type(out) is int
    assert ar.explain_conv(np.int64(224), 11, 4, 2) == ar.explain_conv(224, 11, 4, 2)
    assert ar.solve_padding(np.int64(224), 11, 4, np.int64(56)) == range(7, 11)
    assert ar.pool_output_size(54, 3, 2, 0, 1, ceil_mode=np.bool_(True)) == 27
    from shapecalc.core.errors import ArgumentError

    with pytest.raises(ArgumentError) as info:  # a flag is True or False, not any truthy value
        ar.pool_output_size(54, 3, 2, 0, 1, ceil_mode="yes")
    assert info.value.param == "ceil_mode"
    with pytest.raises(ArgumentError):
        ar.conv_output_size(np.bool_(True), 3)


def test_sizes_up_to_torchs_64_bit_limit_still_work():
    big = ar.LARGEST
    assert ar.conv_output_size(big, 3) == big - 2
    assert ar.explain_conv(big, 3)[-1].endswith(f"= {big - 2:,}")
