"""One window per axis (``core/arithmetic/window.py``): torch's per-side padding becomes the
total ``p`` in one place, for every way a layer is made, and the odd total a solved padding
gives reads as torch reads an ``F.pad`` before the layer."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shapecalc import layers
from shapecalc.core import arithmetic as ar
from shapecalc.core.arithmetic import Window
from shapecalc.core.errors import ConfigError
from shapecalc.core.layers import layer_from_dict

kernels, strides, dilations = st.integers(1, 7), st.integers(1, 4), st.integers(1, 3)


@given(k=kernels, s=strides, side=st.integers(0, 6), d=dilations)
def test_per_side_padding_is_twice_that_in_total(k, s, side, d):
    w = Window.per_side(k, s, side, d)
    assert (w.p, w.p_left, w.p_right) == (2 * side, side, side) == (ar.total_padding(side), side, side)
    assert Window.from_total(k, s, 2 * side, d) == w


@given(k=kernels, s=strides, total=st.integers(0, 13), d=dilations)
def test_an_odd_total_puts_the_odd_pixel_after_the_input(k, s, total, d):
    w = Window.from_total(k, s, total, d)
    assert w.p_left + w.p_right == total and w.p_right - w.p_left == total % 2
    assert w.with_total(total + 1) == Window.from_total(k, s, total + 1, d)
    assert list(w.step().reads(0)) == list(range(-w.p_left, -w.p_left + w.span, d))  # output 0 starts before


@given(k=kernels, s=strides, d=dilations, op=st.integers(0, 3), ceil=st.booleans(), same=st.booleans(),
       total=st.integers(0, 13), left=st.integers(0, 6))
def test_with_padding_keeps_every_other_field(k, s, d, op, ceil, same, total, left):
    # with_padding spells the fields out (dataclasses.replace is slow): a field added to
    # Window and not copied there would be lost from every padded conv and pool.
    assert [f.name for f in dataclasses.fields(Window)] == [
        "k", "s", "p", "p_left", "d", "output_padding", "ceil_mode", "tf_same"], "copy it in with_padding"
    w = Window(k, s, 0, 0, d, op, ceil, same)
    if left > total:
        with pytest.raises(ConfigError):
            w.with_padding(total, left)
    else:
        assert w.with_padding(total, left) == dataclasses.replace(w, p=total, p_left=left)


@pytest.mark.parametrize("args, message", [
    ((0,), "kernel_size must be positive, got 0"),
    ((3, 0), "stride must be positive, got 0"),
    ((3, 1, 0, 0, 0), "dilation must be positive, got 0"),
    ((3, 1, 2, -1), "padding must be non-negative, got -1"),
    ((3, 1, 1, 2), "padding must be non-negative, got -1"),  # more before the input than in all
])
def test_a_window_is_checked_once_where_it_is_made(args, message):
    with pytest.raises(ConfigError, match=message):
        Window(*args)


@given(ndim=st.integers(1, 3), k=kernels, s=strides, side=st.integers(0, 3), d=dilations)
def test_every_conv_and_pool_holds_torchs_padding_as_windows(ndim, k, s, side, d):
    conv = layers.LAYER_TYPES[f"Conv{ndim}d"](2, 4, k, stride=s, padding=side, dilation=d)
    assert conv.windows == (Window.per_side(k, s, side, d),) * ndim
    transposed = layers.LAYER_TYPES[f"ConvTranspose{ndim}d"](2, 4, k, stride=s, padding=side,
                                                            output_padding=s - 1)
    assert transposed.windows == (Window.per_side(k, s, side, 1, output_padding=s - 1),) * ndim
    if side <= k // 2:
        pool = layers.LAYER_TYPES[f"MaxPool{ndim}d"](k, s, side, dilation=d, ceil_mode=True)
        assert pool.windows == (Window.per_side(k, s, side, d, ceil_mode=True),) * ndim
        # the spec file's form builds the same layer, windows included
        assert layer_from_dict({"type": f"MaxPool{ndim}d", "kernel_size": k, "stride": s,
                                "padding": side, "dilation": d, "ceil_mode": True}).windows == pool.windows


def test_same_padding_and_a_solved_odd_padding_keep_the_odd_pixel_after():
    same = layers.Conv2d(1, 1, 4, padding="same")
    assert same.windows == (Window(4, 1, 3, 1),) * 2 and same.output_shape((1, 1, 31, 31)) == (1, 1, 31, 31)
    solved = layers.Conv2d(1, 1, 4).with_total_padding((3, 2))
    assert solved.windows == (Window(4, 1, 3, 1), Window(4, 1, 2, 1))
    assert solved.describe() == "Conv2d(1→1, k=4, p=1)"  # torch's padding=1, the odd pixel by F.pad


torch = pytest.importorskip("torch")


@given(k=kernels, s=strides, total=st.integers(0, 9), d=dilations, n=st.integers(1, 40))
def test_an_odd_total_is_what_torch_gives_after_F_pad(k, s, total, d, n):
    w = Window.from_total(k, s, total, d)
    layer = layers.Conv1d(1, 1, k, stride=s, dilation=d).with_total_padding(total)
    assert layer.windows == (w,)
    x = torch.nn.functional.pad(torch.zeros(1, 1, n), (w.p_left, w.p_right))
    if n + total < w.span:
        return  # torch refuses it too (test_arithmetic and test_properties_torch check how)
    real = torch.nn.functional.conv1d(x, torch.zeros(1, 1, k), stride=s, dilation=d).shape[-1]
    assert layer.output_shape((1, 1, n)) == (1, 1, real)


def test_an_imported_module_gets_the_same_windows():
    from shapecalc.models.api import analyze

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                              torch.nn.Conv2d(4, 4, 4, padding="same"))
    result = analyze(net, (1, 1, 16, 16))
    got = [r.layer.windows for r in result.records]
    assert got == [(Window(3, 1, 2, 1),) * 2, (Window(3, 2, 2, 1, ceil_mode=True),) * 2, (Window(4, 1, 3, 1),) * 2]


@given(n=st.integers(1, 200), k=kernels, s=strides, d=dilations)
def test_tf_same_pads_each_size_to_ceil_n_over_s_and_no_more(n, k, s, d):
    """TensorFlow's 'SAME' (timm's get_same_padding): the least total padding whose output is
    ceil(n / s), the odd pixel after the input; none where the kernel already fits."""
    w = Window(k, s, d=d, tf_same=True).at(n)
    assert not w.tf_same and (w.k, w.s, w.d) == (k, s, d)
    assert (w.p_left, w.p_right) == ar.tf_same_padding(n, k, s, d)
    assert w.p_right - w.p_left in (0, 1)
    assert ar.conv_output_size(n, k, s, w.p, d) == ar.pool_output_size(n, k, s, w.p, d, True) == -(-n // s)
    if w.p and n + w.p - 1 >= w.span:  # one pixel less: one output less (or no fit at all)
        assert ar.conv_output_size(n, k, s, w.p - 1, d) == -(-n // s) - 1
        assert ar.dropped_pixels(n, k, s, w.p, d) == 0  # padded just to the last window's end
    assert Window(k, s, d=d).at(n) == Window(k, s, d=d)  # a fixed padding is the same at every size


def test_tf_same_layers_describe_explain_and_refuse():
    conv = layers.Conv2d(3, 8, 3, stride=2, padding="tf_same")
    assert conv.describe() == "Conv2d(3→8, k=3, s=2, p=tf_same)"
    assert conv.output_shape((1, 3, 7, 8)) == (1, 8, 4, 4)
    assert conv.explain((1, 8, 4, 4), (1, 3, 7, 8))[3:5] == [
        "W: TF 'SAME': p = max((ceil(n / s) − 1)·s + k_eff − n, 0) = max((4 − 1)·2 + 3 − 8, 0) = 1"
        " (0 before, 1 after)",
        "   out = floor((n − k + p + s) / s)"]
    assert layer_from_dict({"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": "tf_same"}
                           ).output_shape((1, 3, 7, 8)) == (1, 3, 4, 4)
    assert layers.AvgPool2d(2, padding="tf_same").describe() == "AvgPool2d(k=2, p=tf_same)"
    with pytest.raises(ConfigError, match="padding must be an int, a tuple or 'tf_same', got 'same'"):
        layers.MaxPool2d(3, padding="same")
    with pytest.raises(ConfigError, match="not a string"):
        layers.ConvTranspose2d(3, 8, 3, padding="tf_same")
