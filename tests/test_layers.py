"""Layer specs: parameter counts against real torch modules, MACs against torchinfo and torch's
own FLOP counter, and typed errors that carry the layer, the axis and the numbers."""

from __future__ import annotations

from math import prod

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapecalc.core.errors import ConfigError, ShapeError, SpecError
from shapecalc.core.notes import Note, NoteKind
from shapecalc.core.layers import (
    LAYER_TYPES, AdaptiveAvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, GroupNorm,
    LayerNorm, Linear, MaxPool2d, layer_from_dict, layer_to_dict,
)

torch = pytest.importorskip("torch")
torchinfo = pytest.importorskip("torchinfo")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def torch_params(layer) -> int:
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ strategies (valid configs)
@st.composite
def convs(draw, transposed: bool = False):
    ndim = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    in_ch = groups * draw(st.integers(1, 3))
    out_ch = groups * draw(st.integers(1, 3))
    kernel = draw(st.tuples(*[st.integers(1, 4)] * ndim))
    stride = draw(st.integers(1, 3))
    name = f"{'ConvTranspose' if transposed else 'Conv'}{ndim}d"
    kwargs = dict(kernel_size=kernel, stride=stride, groups=groups, bias=draw(st.booleans()))
    if transposed:
        kwargs["output_padding"] = draw(st.integers(0, stride - 1))
    layer = LAYER_TYPES[name](in_ch, out_ch, **kwargs)
    shape = (draw(st.integers(1, 3)), in_ch, *draw(st.tuples(*[st.integers(4, 9)] * ndim)))
    return layer, shape


norms = st.one_of(
    st.builds(lambda c, a: LAYER_TYPES[f"BatchNorm{len(c)}d"](c[0], affine=a),
              st.lists(st.integers(1, 16), min_size=1, max_size=3), st.booleans()),
    st.builds(lambda g, m, a: GroupNorm(g, g * m, affine=a),
              st.integers(1, 4), st.integers(1, 4), st.booleans()),
    st.builds(lambda shape, a, b: LayerNorm(shape, elementwise_affine=a, bias=b),
              st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple), st.booleans(),
              st.booleans()),
    st.builds(lambda c, a: LAYER_TYPES["InstanceNorm2d"](c, affine=a), st.integers(1, 8),
              st.booleans()),
    st.builds(lambda n: LAYER_TYPES["PReLU"](n), st.integers(1, 8)),
)


# ------------------------------------------------------------------ parameters
@given(case=st.one_of(convs(), convs(transposed=True)))
def test_conv_params_equal_torch(case):
    layer, shape = case
    assert layer.param_count(shape) == torch_params(layer)


@given(i=st.integers(1, 64), o=st.integers(1, 64), bias=st.booleans())
def test_linear_params_equal_torch(i, o, bias):
    layer = Linear(i, o, bias=bias)
    assert layer.param_count((2, i)) == torch_params(layer) == i * o + o * bias


@given(layer=norms)
def test_norm_params_equal_torch(layer):
    if isinstance(layer, LayerNorm):
        shape = (2, *layer._norm_shape())
    elif isinstance(layer, GroupNorm):
        shape = (2, layer.num_channels, 5)
    elif layer.type_name == "PReLU":
        shape = (2, layer.num_parameters, 3)
    else:
        shape = (2, layer.num_features) + (3,) * {"BatchNorm1d": 1, "BatchNorm3d": 3}.get(layer.type_name, 2)
    assert layer.param_count(shape) == torch_params(layer)
    # The torch module accepts the shape the engine says it does, and keeps it.
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    assert tuple(module(torch.zeros(shape)).shape) == layer.output_shape(shape)


# ------------------------------------------------------------------ MACs
def torchinfo_mult_adds(layer, shape) -> int:
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    return torchinfo.summary(module, input_size=shape, verbose=0, device="cpu").total_mult_adds


# torchinfo's summary costs milliseconds; 40 random layers per kind is plenty for a formula.
@settings(max_examples=40)
@given(case=convs())
def test_conv_macs_equal_torchinfo(case):
    layer, shape = case
    out = layer.output_shape(shape)
    assert layer.mac_count(out, shape) == torchinfo_mult_adds(layer, shape)


@settings(max_examples=40)
@given(i=st.integers(1, 64), o=st.integers(1, 64), batch=st.integers(1, 4), bias=st.booleans())
def test_linear_macs_equal_torchinfo(i, o, batch, bias):
    layer = Linear(i, o, bias=bias)
    assert layer.mac_count((batch, o), (batch, i)) == torchinfo_mult_adds(layer, (batch, i))


@settings(max_examples=40)
@given(c=st.integers(1, 16), batch=st.integers(1, 4), affine=st.booleans())
def test_batchnorm_macs_equal_torchinfo(c, batch, affine):
    layer = BatchNorm2d(c, affine=affine)
    shape = (batch, c, 5, 5)
    assert layer.mac_count(shape, shape) == torchinfo_mult_adds(layer, shape)


@settings(max_examples=60)
@given(case=convs(transposed=True))
def test_conv_transpose_macs_count_each_input_position_once(case):
    """torchinfo multiplies by OUTPUT positions (an overcount for strided layers); torch's own
    FLOP counter counts the real scatter: FLOPs/2 for the weights, plus one add per bias."""
    layer, shape = case
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    with FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(shape))
    out = layer.output_shape(shape)
    assert tuple(y.shape) == out
    bias = layer.out_channels * out[0] * prod(out[2:]) if layer.bias else 0
    assert layer.mac_count(out, shape) == counter.get_total_flops() // 2 + bias


def test_linear_macs_count_every_leading_position():
    """(N, T, F) inputs: each of the N·T rows is one matrix-vector product."""
    layer = Linear(8, 4)
    with FlopCounterMode(display=False) as counter:
        torch.nn.Linear(8, 4)(torch.zeros(2, 3, 8))
    assert layer.mac_count((2, 3, 4), (2, 3, 8)) == counter.get_total_flops() // 2 + 2 * 3 * 4


# ------------------------------------------------------------------ typed errors
def test_kernel_too_big_names_layer_axis_and_numbers():
    with pytest.raises(ShapeError) as info:
        Conv2d(3, 8, (3, 5)).output_shape((1, 3, 10, 4))
    err = info.value
    assert err.layer == "Conv2d(3→8, k=3x5)" and err.axis == "W"
    assert err.numbers == {"input": 4, "kernel": 5, "dilation": 1, "padding": 0, "span": 5}
    assert "Conv2d(3→8, k=3x5) (axis W)" in str(err) and "\n" not in str(err)


def test_channel_mismatch_carries_both_counts():
    with pytest.raises(ShapeError) as info:
        Conv2d(3, 8, 3).output_shape((1, 4, 10, 10))
    assert info.value.numbers == {"expected_channels": 3, "channels": 4}


def test_linear_mismatch_says_what_torch_says():
    with pytest.raises(ShapeError) as info:
        Linear(6400, 4096).output_shape((1, 9216))
    err = info.value
    assert err.numbers["in_features"] == 6400 and err.numbers["features"] == 9216
    assert "mat1 and mat2 shapes cannot be multiplied (1x9216 and 6400x4096)" in str(err)


def test_groups_must_divide_channels():
    with pytest.raises(ConfigError) as info:
        Conv2d(4, 6, 3, groups=4)
    assert info.value.numbers == {"out_channels": 6, "groups": 4}


def test_pool_padding_over_half_the_kernel_is_refused_per_axis():
    with pytest.raises(ConfigError) as info:
        MaxPool2d((3, 4), padding=(1, 3), dilation=2)
    assert info.value.axis == "W"
    assert info.value.numbers == {"padding": 3, "kernel": 4, "limit": 2}


def test_same_padding_with_stride_points_to_target():
    with pytest.raises(ConfigError, match="solve the padding"):
        Conv2d(1, 1, 3, stride=2, padding="same")


def test_one_element_kernel_tuple_for_2d_conv_is_refused():
    with pytest.raises(ConfigError, match="tuple of 2"):
        Conv2d(1, 1, (3,))


def test_adaptive_output_size_none_only_inside_a_tuple():
    assert AdaptiveAvgPool2d((None, 3)).output_shape((1, 2, 7, 9)) == (1, 2, 7, 3)
    with pytest.raises(ConfigError):
        AdaptiveAvgPool2d(None)


# ------------------------------------------------------------------ shapes, notes, identity
def test_unbatched_inputs_keep_their_rank():
    assert Conv2d(1, 4, 3).output_shape((1, 8, 8)) == (4, 6, 6)
    assert MaxPool2d(2).output_shape((4, 8, 8)) == (4, 4, 4)
    assert ConvTranspose2d(2, 3, 2, stride=2).output_shape((2, 5, 5)) == (3, 10, 10)


def test_alexnet_conv1_notes_and_description():
    layer = Conv2d(1, 96, 11, stride=4, padding=1)
    assert layer.describe() == "Conv2d(1→96, k=11, s=4, p=1)"
    out = layer.output_shape((1, 1, 224, 224))
    assert out == (1, 96, 54, 54)
    notes = layer.notes(out, (1, 1, 224, 224))
    assert notes == [Note.of(NoteKind.DROPS, px=3, axes=("H", "W"))]
    assert [str(n) for n in notes] == ["drops 3 px (H, W)"]
    lines = layer.explain(out, (1, 1, 224, 224))
    assert lines[0] == "H: out = floor((n − k + p + s) / s)"
    assert "floor(219 / 4) = 54" in lines[1] and lines[2] == "W: same as H"


def test_lazy_fields_are_resolved_from_the_input():
    lazy = Conv2d(None, 8, 3)
    assert lazy.resolve((1, 5, 9, 9)).in_channels == 5
    [note] = lazy.notes((1, 8, 7, 7), (1, 5, 9, 9))
    assert note.kind is NoteKind.INFERRED and str(note) == "in_channels=5 inferred"
    assert Linear(None, 10).resolve((2, 6400)).in_features == 6400
    assert BatchNorm2d().resolve((1, 7, 2, 2)).num_features == 7


def test_flatten_notes_the_product():
    flat = Flatten()
    assert flat.output_shape((1, 256, 5, 5)) == (1, 6400)
    [note] = flat.notes((1, 6400), (1, 256, 5, 5))
    assert note.kind is NoteKind.FLATTENS and str(note) == "256×5×5 = 6,400"


@given(case=st.one_of(convs(), convs(transposed=True)))
def test_dict_round_trip_and_torch_kwargs(case):
    layer, _ = case
    entry = layer_to_dict(layer)
    assert layer_from_dict(entry) == layer
    module = getattr(torch.nn, layer.type_name)(**layer.torch_kwargs())
    assert module.kernel_size == tuple(w.k for w in layer.windows)


def test_layer_from_dict_errors_are_spec_errors():
    with pytest.raises(SpecError, match="did you mean 'Conv2d'"):
        layer_from_dict({"type": "Conv2D", "in_channels": 1, "out_channels": 1, "kernel_size": 3})
    with pytest.raises(SpecError, match="does not take 'kernel'"):
        layer_from_dict({"type": "Linear", "in_features": 1, "out_features": 1, "kernel": 3})


# ------------------------------------------------------------------ registry and field types
def test_registry_collects_every_public_layer_class():
    import inspect

    import shapecalc.core.layers as package
    from shapecalc.core.layers.base import Layer

    for name in ("Conv2d", "Reshape", "Elementwise", "GroupNorm", "AdaptiveMaxPool3d"):
        assert LAYER_TYPES[name].__name__ == name and getattr(package, name) is LAYER_TYPES[name]
    import pkgutil, importlib

    defined = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"shapecalc.core.layers.{info.name}")
        defined |= {n for n, obj in vars(module).items() if inspect.isclass(obj) and issubclass(obj, Layer)
                    and obj is not Layer and not n.startswith("_") and obj.__module__ == module.__name__}
    assert defined == set(LAYER_TYPES)


def test_numpy_integers_become_ints_and_serialise():
    import json

    np = pytest.importorskip("numpy")
    conv = Conv2d(np.int64(3), np.int32(8), (np.int64(3), 5), stride=np.int16(2))
    assert type(conv.in_channels) is int and conv.kernel_size == (3, 5) and type(conv.kernel_size[0]) is int
    assert json.dumps(layer_to_dict(conv))
    assert conv == Conv2d(3, 8, (3, 5), stride=2)
    lin = Linear(None, np.uint8(10), bias=np.bool_(False))
    assert lin.bias is False and type(lin.out_features) is int


@pytest.mark.parametrize("build, field, expected", [
    (lambda v: Conv2d(3, 8, v), "kernel_size", "expected an integer or a list of integers"),
    (lambda v: Linear(4, v), "out_features", "expected an integer"),
    (lambda v: MaxPool2d(2, stride=v), "stride", "expected an integer, a list of integers or null"),
    (lambda v: AdaptiveAvgPool2d(v), "output_size", "expected an integer"),
    (lambda v: GroupNorm(v, 8), "num_groups", "expected an integer"),
])
@pytest.mark.parametrize("bad", [3.0, float("nan"), float("inf"), "3", True])
def test_wrong_types_are_field_errors_naming_the_parameter(build, field, expected, bad):
    from shapecalc.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        build(bad)
    assert err.value.field == field and expected in err.value.detail
    assert f"{field}: {err.value.detail}" in str(err.value)


@pytest.mark.parametrize("build, field", [
    (lambda: GroupNorm(0, 8), "num_groups"),
    (lambda: GroupNorm(3, 8), "num_groups"),
    (lambda: Conv2d(3, 8, 10**30), "kernel_size"),
    (lambda: Conv2d(3, 8, 3, padding_mode="mirror"), "padding_mode"),
    (lambda: AdaptiveAvgPool2d(10**30), "output_size"),
    (lambda: AdaptiveAvgPool2d(10**6), "output_size"),
    (lambda: LAYER_TYPES["Pad"](-1), "pad"),
    (lambda: LAYER_TYPES["Permute"](-1), "dims"),
    (lambda: LAYER_TYPES["Upsample"](scale_factor=float("nan")), "scale_factor"),
    (lambda: LAYER_TYPES["Upsample"](size=None, scale_factor=-2.0), "scale_factor"),
    (lambda: LAYER_TYPES["Dropout"](p=1.5), "p"),
    (lambda: LAYER_TYPES["GELU"](approximate="fast"), "approximate"),
    (lambda: LAYER_TYPES["BatchNorm2d"](0), "num_features"),
    (lambda: LAYER_TYPES["LeakyReLU"](float("-inf")), "negative_slope"),
    (lambda: LAYER_TYPES["Reshape"]((1, 10**5000)), "shape[1]"),
])
def test_bad_values_name_the_field(build, field):
    from shapecalc.core.errors import FieldError

    with pytest.raises(FieldError) as err:
        build()
    assert err.value.field == field
    assert len(str(err.value)) < 200 and "\n" not in str(err.value)


def test_pad_value_may_be_minus_infinity():
    pad = LAYER_TYPES["Pad"]((1, 1), value=float("-inf"))
    assert pad.output_shape((1, 2, 3)) == (1, 2, 5)


# ------------------------------------------------------------------ per-axis answers (_WindowLayer)
def test_ceil_mode_pool_notes_the_row_no_window_reads():
    pool = MaxPool2d(2, 3, ceil_mode=True)
    out = pool.output_shape((1, 1, 9, 9))
    assert out == (1, 1, 3, 3)
    assert pool.notes(out, (1, 1, 9, 9)) == [Note.of(NoteKind.DROPS, px=1, axes=("H", "W"))]
    assert pool.uncovered(0, 9) == 1 and pool.uncovered(0, 8) == 0


def test_window_and_total_padding_as_the_cli_counts_it():
    conv = Conv2d(1, 1, 4).with_total_padding((3, 2))
    assert (conv.window(0).p, conv.window(0).p_left) == (3, 1)
    assert (conv.window(1).p, conv.window(1).p_left) == (2, 1) and conv.padding == 1
    assert conv.output_shape((1, 1, 31, 31)) == (1, 1, 31, 30)
    assert Conv2d(1, 1, 4).with_total_padding(4) == Conv2d(1, 1, 4, padding=2)
    assert MaxPool2d(3).padding_limit(0) == 1
    with pytest.raises(ConfigError) as info:
        MaxPool2d(3).with_total_padding(3)  # 1 before, 2 after: the larger side is over
    assert info.value.numbers == {"padding": 2, "kernel": 3, "limit": 1}


def test_padding_solutions_are_ranges_within_the_layers_limit():
    assert Conv2d(1, 1, 11, stride=4).padding_solutions(0, 224, 56) == range(7, 11)
    assert MaxPool2d(3, 2).padding_solutions(0, 54, 27) == range(1, 3)  # at most 1 per side
    assert not MaxPool2d(3, 2).padding_solutions(0, 54, 40)
    assert ConvTranspose2d(1, 1, 3, stride=2).padding_solutions(0, 28, 56) == range(1, 2)


def test_every_layer_kind_is_a_layer_kind_and_only_measured_layers_say_measured():
    from shapecalc.core.layers import LAYER_TYPES, LayerKind

    assert LAYER_TYPES and all(isinstance(cls.kind, LayerKind) for cls in LAYER_TYPES.values())
    assert not any(cls.measured for cls in LAYER_TYPES.values())


@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 9))
def test_every_norm_layer_charges_its_affine_parameters_once_per_sample(n, c, size):
    from shapecalc.core.layers import (
        BatchNorm2d, GroupNorm, InstanceNorm2d, LayerKind, LayerNorm, RMSNorm,
    )

    batched = (n, c, size, size)
    for layer in (BatchNorm2d(c), GroupNorm(1, c), InstanceNorm2d(c, affine=True),
                  LayerNorm(size), RMSNorm(size)):
        assert layer.kind is LayerKind.NORM
        out = layer.output_shape(batched)
        assert layer.mac_count(out, batched) == n * layer.param_count(batched)
    unbatched = (c, size, size)  # InstanceNorm2d alone takes an input without a batch dimension
    norm = InstanceNorm2d(c, affine=True)
    assert norm.mac_count(norm.output_shape(unbatched), unbatched) == 2 * c


# ------------------------------------------------------- the arithmetic of parameters and MACs
def _last_number(line: str) -> int:
    import re

    return int(re.findall(r"\d+(?:,\d{3})*", line)[-1].replace(",", ""))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4), f=st.integers(1, 5000), o=st.integers(1, 5000), bias=st.booleans(),
       tokens=st.integers(0, 3))
def test_linear_explains_its_parameters_and_macs(n, f, o, bias, tokens):
    from shapecalc.core.layers import Linear

    layer = Linear(f, o, bias=bias)
    inp = (n, *([7] * tokens), f)
    out = layer.output_shape(inp)
    params_line, macs_line = layer.explain_cost(out, inp)
    assert _last_number(params_line) == layer.param_count(inp) == torch_params(layer)
    assert f"{f:,}·{o:,}" in params_line and (f" + {o:,}" in params_line) == bias
    assert _last_number(macs_line) == layer.mac_count(out, inp)
    assert f"= {prod(out[:-1]):,} · " in macs_line


@pytest.mark.parametrize("model", ["alexnet", "resnet18", "lenet-bn", "densenet"])
def test_every_row_without_size_arithmetic_explains_its_costs(model):
    """Rows whose size needs no arithmetic (Linear, norm layers) work out their parameters and
    MACs instead, and the numbers they end on are the row's own."""
    import shapecalc

    for rec in shapecalc.analyze(model).records:
        lines = rec.explain()
        if rec.layer is None or rec.layer.explain(rec.output_shape, *rec.input_shapes):
            continue
        if rec.params:
            assert lines and lines[0].startswith("params = "), (rec.name, lines)
            assert _last_number(lines[0]) == rec.params
            assert _last_number(lines[1]) == rec.macs
        else:
            assert lines == [], (rec.name, lines)


@given(st.integers(8, 300), st.integers(1, 7), st.integers(1, 3))
def test_a_window_layer_solves_its_own_padding_for_a_target(n, k, s):
    from shapecalc.core.layers import Conv2d

    layer = Conv2d(1, 1, k, stride=s)
    target = (n - 1) // s + 1  # 'same'-like output: always reachable with enough padding
    padded, solutions = layer.padded_for((n, n), (target, target))
    assert padded.output_shape((1, 1, n, n))[2:] == (target, target)
    total = padded.window(0).p
    assert total in solutions[0] and (total % 2 == 0 or all(p % 2 for p in solutions[0]))
    assert total == min((p for p in solutions[0] if p % 2 == 0), default=solutions[0].start)


def test_a_padding_no_window_layer_can_reach_says_why():
    from shapecalc.core.layers import ConvTranspose2d, MaxPool2d

    with pytest.raises(ShapeError, match="no padding gives 20 on axis H: with padding 0 the transposed "
                                         "convolution already gives 17, and padding only shrinks it"):
        ConvTranspose2d(1, 1, 3, stride=2).padded_for((8, 8), (20, 15))
    with pytest.raises(ShapeError, match=r"no padding gives 9 within torch's limit .* 1 for kernel 3\)$"):
        MaxPool2d(3).padded_for((9, 9), (9, 9), name_axes=False)


@pytest.mark.parametrize("case", ["conv", "pool", "conv total", "pool total"])
def test_every_window_layer_refuses_negative_padding_in_one_place(case):
    from shapecalc.core.layers import AvgPool1d, Conv2d, MaxPool2d

    make = {"conv": lambda: Conv2d(1, 1, 3, padding=-1), "pool": lambda: MaxPool2d(3, padding=-1),
            "conv total": lambda: Conv2d(1, 1, 3).with_total_padding(-1),
            "pool total": lambda: AvgPool1d(3).with_total_padding(-2)}[case]
    with pytest.raises(ConfigError, match="padding must be non-negative, got -1"):
        make()
