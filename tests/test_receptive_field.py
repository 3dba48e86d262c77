"""Receptive fields against torch autograd: backprop one output pixel, see which inputs it reached.

With all-ones weights, zero bias and average pools every path carries a positive gradient, so
the input pixels with a non-zero gradient are exactly the pixels the output pixel sees (max
pooling would route the gradient to one pixel per window, hence average pools here). The
engine's :class:`AxisRF` claims: output ``j`` sees the pixels centred on ``start + j·jump``,
``size`` wide. Where that window (and every intermediate window on the way) lies inside the
input, the gradient's extent must be exactly that; at the borders it can only be clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shapecalc.core.arithmetic import AxisRF, effective_kernel
from shapecalc.core.blocks import Sequential
from shapecalc.core.graph import analyze_graph
from shapecalc.core.layers import AvgPool1d, Conv1d, Conv2d, ConvTranspose1d, Layer

torch = pytest.importorskip("torch")
from shapecalc.torch_bridge import layer_to_module  # noqa: E402  (needs torch)


@dataclass(frozen=True)
class Window:
    """One conv/pool layer of a 1-D chain, as the index arithmetic sees it."""

    k: int
    s: int
    p: int  # per side
    d: int = 1
    pool: bool = False

    def layer(self) -> Layer:
        if self.pool:
            return AvgPool1d(self.k, self.s, self.p)
        return Conv1d(1, 1, self.k, stride=self.s, padding=self.p, dilation=self.d, bias=False)


windows = st.one_of(
    st.builds(Window, k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2),
              d=st.integers(1, 3)),
    st.integers(1, 4).flatmap(lambda k: st.builds(
        Window, k=st.just(k), s=st.integers(1, 3), p=st.integers(0, k // 2), pool=st.just(True))),
)


def ones_module(layers: list[Layer]):
    """The torch chain of ``layers`` with every weight 1: gradients never cancel."""
    modules = [layer_to_module(layer) for layer in layers]
    with torch.no_grad():
        for m in modules:
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
    return torch.nn.Sequential(*modules).double()


def input_gradients(module, input_shape: tuple[int, ...]):
    """d output / d input for EVERY output pixel at once (one vectorised autograd call).

    Shape ``(*output spatial, *input spatial)``: entry ``[j…, i…]`` is the gradient that output
    pixel ``j`` sends to input pixel ``i``.
    """
    x = torch.ones(input_shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: module(t)[0, 0], x, vectorize=True)
    return jac[..., 0, 0, *([slice(None)] * (len(input_shape) - 2))]


def gradient_support(grads, out_index: tuple[int, ...]) -> list[tuple[int, int]] | None:
    """Per spatial axis, the (first, last) input index with a non-zero gradient from one output.

    ``None`` when the output sees padding only (a 1-wide kernel on a padded border).
    """
    nz = (grads[out_index] != 0).nonzero()
    if not len(nz):
        return None
    return [(int(nz[:, a].min()), int(nz[:, a].max())) for a in range(nz.shape[1])]


def interior_outputs(chain: list[Window], sizes: list[int]) -> list[int]:
    """Outputs whose windows, traced back layer by layer, never touch padding or the border."""
    found = []
    for j in range(sizes[-1]):
        lo, hi, inside = j, j, True
        for w, n_prev in zip(reversed(chain), reversed(sizes[:-1])):
            lo, hi = lo * w.s - w.p, hi * w.s - w.p + effective_kernel(w.k, w.d) - 1
            inside = inside and lo >= 0 and hi <= n_prev - 1
        if inside:
            found.append(j)
    return found


def field_bounds(rf: AxisRF, j: int) -> tuple[float, float]:
    centre = rf.start + j * rf.jump
    return centre - (rf.size - 1) / 2, centre + (rf.size - 1) / 2


@given(chain=st.lists(windows, min_size=1, max_size=4), extra=st.integers(0, 12))
def test_field_of_a_conv_pool_chain_is_what_autograd_reaches(chain: list[Window], extra: int) -> None:
    rf = AxisRF(1, 1, 0.0)
    for w in chain:
        rf = rf.through_window(w.k, w.s, w.p, w.d)
    n = int(2 * rf.size + rf.jump) + extra  # room for at least one output in the interior
    layers = [w.layer() for w in chain]
    try:
        result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, n))
    except Exception:  # the chain collapses at this size: nothing to measure
        assume(False)
    sizes = [n] + [r.output_shape[-1] for r in result.records]
    (engine_rf,) = result.records[-1].rf
    assert engine_rf == rf  # the graph pass composes the same recurrence
    grads = input_gradients(ones_module(layers), (1, 1, n))
    interior = interior_outputs(chain, sizes)
    for j in range(sizes[-1]):
        support = gradient_support(grads, (j,))
        if support is None:
            assert j not in interior
            continue
        ((first, last),) = support
        low, high = field_bounds(rf, j)
        assert low <= first and last <= high, f"output {j} reaches [{first}, {last}] beyond [{low}, {high}]"
        if j in interior:  # nothing clipped: the field is exactly the claimed window
            assert (first, last) == (low, high), f"output {j}: autograd [{first}, {last}], engine [{low}, {high}]"
            assert last - first + 1 == rf.size


@given(k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3),
       n=st.integers(1, 12))
def test_transposed_field_size_is_the_widest_fan_in(k: int, s: int, p: int, d: int, n: int) -> None:
    """A transposed conv's output pixels see different numbers of inputs; ``size`` is the most."""
    layer = ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    try:
        out = layer.output_shape((1, 1, n))[-1]
    except Exception:
        assume(False)
    (rf,) = layer.receptive_field((AxisRF(1, 1, 0.0),), (1, 1, n))
    grads = input_gradients(ones_module([layer]), (1, 1, n))
    extents = []
    for j in range(out):
        support = gradient_support(grads, (j,))
        if support is not None:
            ((first, last),) = support
            extents.append(last - first + 1)
            # The centre the engine claims is the continuous one, (j + p − (span−1)/2)/s: the
            # inputs actually reached lie within (span−1)/(2s) of it.
            centre = rf.start + j * rf.jump
            reach = (effective_kernel(k, d) - 1) / (2 * s)
            assert centre - reach - 1e-9 <= first and last <= centre + reach + 1e-9
    assert rf.jump == pytest.approx(1 / s)
    # An unclipped output sees the widest fan-in; with enough inputs one exists.
    if n >= effective_kernel(k, d) + 2 * s:
        assert max(extents) == rf.size
    assert all(e <= rf.size for e in extents)


def test_two_d_field_is_per_axis() -> None:
    """A (3, 5) kernel at stride (1, 2): 3 rows by 5 columns, then through a second conv."""
    layers = [Conv2d(1, 1, (3, 5), stride=(1, 2), bias=False), Conv2d(1, 1, 3, bias=False)]
    result = analyze_graph(Sequential(*layers).to_graph(), (1, 1, 20, 30))
    rf_h, rf_w = result.records[-1].rf
    assert (rf_h.size, rf_w.size) == (5, 5 + 2 * 2)
    assert (rf_h.jump, rf_w.jump) == (1, 2)
    grads = input_gradients(ones_module(layers), (1, 1, 20, 30))
    (h0, h1), (w0, w1) = gradient_support(grads, (4, 5))
    assert (h0, h1) == field_bounds(rf_h, 4)
    assert (w0, w1) == field_bounds(rf_w, 5)


def test_alexnet_first_layers_field() -> None:
    """d2l AlexNet's conv1 (k11 s4 p1) then max pool (k3 s2): 11, then 11 + 2·4 = 19 pixels."""
    rf = AxisRF(1, 1, 0.0).through_window(11, 4, 1)
    assert (rf.size, rf.jump, rf.start) == (11, 4, 4.0)  # first window centred at 5 − 1
    rf = rf.through_window(3, 2, 0)
    assert (rf.size, rf.jump, rf.start) == (19, 8, 8.0)
