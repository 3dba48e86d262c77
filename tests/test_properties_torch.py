"""The engine against the real torch layers, by property: same shape, and errors in the same places.

Every property draws a layer configuration in torch's own keyword arguments plus an input
shape, builds BOTH ``torch.nn.<Type>(**kwargs)`` and ``shapecalc.core.layers.<Type>(**kwargs)``, and
checks one thing: either both refuse (torch at construction or forward, the engine with a typed
:class:`ShapeError`/:class:`ConfigError`), or both give the same output shape. Disagreement in
either direction fails, so the engine can neither accept what torch refuses nor refuse what
torch accepts.

Values are drawn from slightly beyond the valid ranges (stride 0, negative padding, a kernel
wider than the input, a one-element tuple for a 2-D kernel, groups that do not divide) so the
refusals are compared too. Tensors stay tiny (batch ≤ 2, ≤ 4 channels, ≤ 40 px in 2-D, ≤ 12 in
3-D): the shape logic does not depend on size, and 500 examples a property stay cheap.

Three torch paths skip torch's own checks, and the engine deliberately does not copy them:
an empty batch (Conv3d with dilation 0 runs), oneDNN's grouped transposed conv on CPU
(compared with mkldnn disabled, i.e. torch's native kernels) and the ``input.mean`` shortcut
of an all-ones adaptive average, which turns an empty input into NaN (such cases are assumed
away). Everything else must agree exactly.

CI runs the ``ci`` profile (500 examples a property, ``CI=true``); a failure prints the
reproduction blob, and ``pytest --hypothesis-seed=N`` replays a run.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from shapecalc.core.errors import LayerError, ShapeError
from shapecalc.core.layers import LAYER_TYPES

torch = pytest.importorskip("torch")

# Largest spatial size drawn per dimensionality: keeps every forward in the microseconds.
MAX_SIZE = {1: 40, 2: 40, 3: 12}


@dataclass(frozen=True)
class Case:
    """One layer configuration, in torch's names, and the input it is applied to."""

    type_name: str
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class Refused:
    """Either side declined the configuration; the message is kept for the failure report."""

    error: str

    def __eq__(self, other: object) -> bool:  # both refused: what they said may differ
        return isinstance(other, Refused)

    def __hash__(self) -> int:
        return 0


def torch_outcome(case: Case) -> tuple[int, ...] | Refused:
    """What real torch does: the output shape of a forward, or the error it raises."""
    with warnings.catch_warnings():
        # padding='same' with an even kernel and zero-element weights warn; neither matters here.
        warnings.simplefilter("ignore")
        try:
            module = getattr(torch.nn, case.type_name)(**case.kwargs)
            # oneDNN, which runs grouped transposed convs on CPU, skips torch's own checks
            # (dilation 0, output size 0 "work" there): compare with torch's native kernels.
            with torch.no_grad(), torch.backends.mkldnn.flags(enabled=False):
                out = module(torch.zeros(case.input_shape))
        except (RuntimeError, ValueError, TypeError) as err:
            return Refused(f"{type(err).__name__}: {str(err).splitlines()[0]}")
    if isinstance(out, tuple):  # return_indices=True
        out = out[0]
    return tuple(out.shape)


def engine_outcome(case: Case) -> tuple[int, ...] | Refused:
    """What the engine says; any error other than the typed ones propagates and fails the test."""
    try:
        layer = LAYER_TYPES[case.type_name](**case.kwargs)
    except LayerError as err:  # ShapeError or ConfigError: refused at construction
        _check_error_message(err)
        return Refused(f"{type(err).__name__}: {err}")
    try:
        return layer.output_shape(case.input_shape)
    except LayerError as err:
        _check_error_message(err)
        assert err.layer, f"an error from output_shape must name its layer: {err!r}"
        return Refused(f"{type(err).__name__}: {err}")


def _check_error_message(err: ShapeError) -> None:
    text = str(err)
    assert text and "\n" not in text, f"errors are one non-empty line, got {text!r}"


def assert_agrees(case: Case) -> None:
    expected = torch_outcome(case)
    got = engine_outcome(case)
    note(f"torch:  {expected}")
    note(f"engine: {got}")
    assert got == expected, f"{case}: torch gives {expected}, the engine {got}"


# ------------------------------------------------------------------ strategies
# Every strategy is built once per dimensionality (functools.cache) and draws plain values:
# rebuilding strategies inside each draw made hypothesis, not torch, the cost of these tests.
def mostly(valid: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` about nine times in ten, otherwise ``rare`` (out-of-range values)."""
    return st.tuples(st.integers(0, 9), valid, rare).map(lambda t: t[2] if t[0] == 0 else t[1])


def per_axis(values: st.SearchStrategy, ndim: int) -> st.SearchStrategy:
    """Torch's ``int or tuple`` convention: one int for every axis, or one value per axis."""
    options = [values, st.tuples(*[values] * ndim)]
    if ndim > 1:
        options.append(st.tuples(values))  # a 1-tuple: some torch layers expand it, some refuse
    return st.one_of(*options)


@functools.cache
def spatial_inputs(ndim: int, channels: st.SearchStrategy) -> st.SearchStrategy:
    """Batched ``(N, C, *sizes)`` or unbatched ``(C, *sizes)``, sizes rarely zero.

    Batch 0 is left out on purpose: torch skips some argument checks on an empty batch
    (Conv3d with dilation 0 "works" there), which is not a rule worth copying.
    """
    sizes = st.tuples(*[mostly(st.integers(1, MAX_SIZE[ndim]), st.just(0))] * ndim)
    batch = st.none() | st.integers(1, 2)
    return st.tuples(batch, channels, sizes).map(
        lambda t: (t[1], *t[2]) if t[0] is None else (t[0], t[1], *t[2])
    )


@functools.cache
def conv_cases(ndim: int, transposed: bool = False) -> st.SearchStrategy:
    groups = mostly(st.integers(1, 2), st.integers(0, 4))
    kernel = per_axis(mostly(st.integers(1, 7), st.integers(-1, 0)), ndim)
    stride = per_axis(mostly(st.integers(1, 4), st.integers(-1, 0)), ndim)
    dilation = per_axis(mostly(st.integers(1, 3), st.integers(-1, 0)), ndim)
    padding = per_axis(mostly(st.integers(0, 4), st.just(-1)), ndim)
    if not transposed:
        padding = padding | st.sampled_from(["same", "valid"])
    output_padding = per_axis(mostly(st.integers(0, 3), st.just(-1)), ndim)
    channels = st.integers(1, 4)
    name = f"{'ConvTranspose' if transposed else 'Conv'}{ndim}d"

    @st.composite
    def cases(draw) -> Case:
        in_ch = draw(channels)
        kwargs: dict[str, Any] = {
            "in_channels": in_ch, "out_channels": draw(channels), "kernel_size": draw(kernel),
            "stride": draw(stride), "dilation": draw(dilation), "groups": draw(groups),
            "bias": draw(st.booleans()), "padding": draw(padding),
        }
        if transposed:
            kwargs["output_padding"] = draw(output_padding)
        # Mostly the declared channel count, sometimes another (torch refuses the mismatch).
        shape = draw(spatial_inputs(ndim, mostly(st.just(-1), channels)))
        shape = tuple(in_ch if v == -1 else v for v in shape)
        return Case(name, kwargs, shape)

    return cases()


@functools.cache
def pool_cases(kind: str, ndim: int) -> st.SearchStrategy:
    kernel = per_axis(mostly(st.integers(1, 6), st.integers(-1, 0)), ndim)
    stride = st.none() | per_axis(mostly(st.integers(1, 4), st.integers(-1, 0)), ndim)
    padding = per_axis(mostly(st.integers(0, 3), st.just(-1)), ndim)
    dilation = per_axis(mostly(st.integers(1, 3), st.integers(-1, 0)), ndim)
    divisor = st.none() | mostly(st.integers(1, 9), st.just(0))
    inputs = spatial_inputs(ndim, st.integers(1, 2))

    @st.composite
    def cases(draw) -> Case:
        kwargs: dict[str, Any] = {
            "kernel_size": draw(kernel), "stride": draw(stride), "padding": draw(padding),
            "ceil_mode": draw(st.booleans()),
        }
        if kind == "Max":
            kwargs["dilation"] = draw(dilation)
            kwargs["return_indices"] = draw(st.booleans())
        else:
            kwargs["count_include_pad"] = draw(st.booleans())
            if ndim > 1:
                kwargs["divisor_override"] = draw(divisor)
        return Case(f"{kind}Pool{ndim}d", kwargs, draw(inputs))

    return cases()


@functools.cache
def adaptive_cases(kind: str, ndim: int) -> st.SearchStrategy:
    target = mostly(st.integers(1, MAX_SIZE[ndim]), st.integers(-1, 0))
    # An int, a tuple (mostly of the right length, may hold None), or None itself.
    lengths = mostly(st.just(ndim), st.integers(1, 3))
    tuples = lengths.flatmap(lambda n: st.tuples(*[target | st.none()] * n))
    output_sizes = mostly(target | tuples, st.none())
    inputs = spatial_inputs(ndim, st.integers(1, 2))

    @st.composite
    def cases(draw) -> Case:
        output_size = draw(output_sizes)
        kwargs: dict[str, Any] = {"output_size": output_size}
        if kind == "Max":
            kwargs["return_indices"] = draw(st.booleans())
        shape = draw(inputs)
        # Torch's shortcut for an all-ones average (``input.mean``) skips the empty-input
        # check and returns NaN for a zero-size input; the engine keeps refusing empty inputs.
        spatial = shape[-ndim:]
        if isinstance(output_size, tuple) and len(output_size) == ndim:
            resolved = tuple(n if t is None else t for n, t in zip(spatial, output_size))
        else:
            resolved = (output_size,) * ndim
        assume(not (kind == "Avg" and 0 in spatial and resolved == (1,) * ndim))
        return Case(f"Adaptive{kind}Pool{ndim}d", kwargs, shape)

    return cases()


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("ndim", [1, 2, 3])
@given(data=st.data())
def test_conv_matches_torch(ndim: int, data: st.DataObject) -> None:
    assert_agrees(data.draw(conv_cases(ndim), label="case"))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@given(data=st.data())
def test_conv_transpose_matches_torch(ndim: int, data: st.DataObject) -> None:
    assert_agrees(data.draw(conv_cases(ndim, transposed=True), label="case"))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@given(data=st.data())
def test_max_pool_matches_torch(ndim: int, data: st.DataObject) -> None:
    assert_agrees(data.draw(pool_cases("Max", ndim), label="case"))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@given(data=st.data())
def test_avg_pool_matches_torch(ndim: int, data: st.DataObject) -> None:
    assert_agrees(data.draw(pool_cases("Avg", ndim), label="case"))


@pytest.mark.parametrize("kind", ["Avg", "Max"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@given(data=st.data())
def test_adaptive_pool_matches_torch(kind: str, ndim: int, data: st.DataObject) -> None:
    assert_agrees(data.draw(adaptive_cases(kind, ndim), label="case"))
