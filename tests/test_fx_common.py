"""``module_to_layer`` on timm's TensorFlow-'SAME' modules (``Conv2dSame``, ``StdConv2dSame``,
``MaxPool2dSame``, ``AvgPool2dSame``): the layer it gives must say what the real module does,
at every input size (the padding follows the size, odd totals included), and a model made of
them must trace on torch.fx with every row and every receptive field known."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
timm_layers = pytest.importorskip("timm.layers")
pool2d_same = pytest.importorskip("timm.layers.pool2d_same")
cond_conv2d = pytest.importorskip("timm.layers.cond_conv2d")

import shapecalc  # noqa: E402
from shapecalc.core.arithmetic import FieldRule  # noqa: E402
from shapecalc.core.errors import ShapeError  # noqa: E402
from shapecalc.core.layers import AvgPool2d, CondConv2d, Conv2d, MaxPool2d  # noqa: E402
from shapecalc.core.layers.saved import Backward  # noqa: E402
from shapecalc.torch_bridge import layer_to_module  # noqa: E402
from shapecalc.torch_bridge.fx_common import module_to_layer  # noqa: E402
from shapecalc.torch_bridge.saved import measure_layer  # noqa: E402

sizes = st.integers(1, 24)
kernels, strides, dilations = st.integers(1, 5), st.integers(1, 4), st.integers(1, 3)


def _flop_macs(module, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


@settings(max_examples=60, deadline=None)
@given(h=sizes, w=sizes, kh=kernels, kw=kernels, s=st.tuples(strides, strides), d=dilations,
       groups=st.sampled_from([1, 2]), bias=st.booleans(), std=st.booleans())
def test_conv2d_same_layers_equal_the_timm_module(h, w, kh, kw, s, d, groups, bias, std):
    cls = timm_layers.StdConv2dSame if std else timm_layers.Conv2dSame
    args = dict(stride=s, dilation=d, groups=groups, bias=bias)
    module = cls(4, 6, (kh, kw), padding="SAME", **args) if std else cls(4, 6, (kh, kw), **args)
    layer = module_to_layer(module.eval())
    assert isinstance(layer, Conv2d)
    # StdConv2dSame pads statically where it can (stride 1, an even d·(k−1)): torch's padding
    assert layer.padding == "tf_same" if not std or module.same_pad else layer.padding == module.padding
    x = torch.randn(2, 4, h, w)
    with torch.no_grad():
        out = module(x)
    shape = layer.output_shape(tuple(x.shape))
    assert shape == tuple(out.shape)
    assert shape[2:] == (-(-h // s[0]), -(-w // s[1]))  # 'SAME' means ceil(n / s), whatever k and d
    assert layer.param_count(tuple(x.shape)) == sum(p.numel() for p in module.parameters())
    bias_macs = out.numel() if bias else 0  # torchinfo's convention counts the bias; FlopCounterMode not
    assert layer.mac_count(shape, tuple(x.shape)) == _flop_macs(module, x) + bias_macs


@settings(max_examples=60, deadline=None)
@given(h=sizes, w=sizes, k=st.tuples(kernels, kernels), s=st.tuples(strides, strides), d=dilations,
       ceil_mode=st.booleans(), kind=st.sampled_from(["max", "avg"]), include=st.booleans())
def test_pool2d_same_layers_equal_the_timm_module(h, w, k, s, d, ceil_mode, kind, include):
    if kind == "max":
        module = pool2d_same.MaxPool2dSame(k, s, dilation=d, ceil_mode=ceil_mode)
    else:
        module = pool2d_same.AvgPool2dSame(k, s, ceil_mode=ceil_mode, count_include_pad=include)
    layer = module_to_layer(module)
    assert isinstance(layer, MaxPool2d if kind == "max" else AvgPool2d) and layer.padding == "tf_same"
    x = torch.randn(1, 3, h, w)
    assert layer.output_shape(tuple(x.shape)) == tuple(module(x).shape)
    assert layer.param_count(tuple(x.shape)) == 0


@settings(max_examples=30, deadline=None)
@given(h=sizes, w=sizes, k=kernels, s=strides, d=dilations, kind=st.sampled_from(["conv", "max", "avg"]))
def test_a_spec_layer_builds_the_module_timm_has(h, w, k, s, d, kind):
    """The TF-'SAME' layer's own torch module (a spec's build) computes what timm's does, and
    keeps for backward what its rule says: F.pad's copy, not the input."""
    if kind == "conv":
        timm_module = timm_layers.Conv2dSame(3, 5, k, stride=s, dilation=d)
    elif kind == "max":
        timm_module = pool2d_same.MaxPool2dSame(k, s, dilation=d)
    else:
        timm_module = pool2d_same.AvgPool2dSame(k, s)
    layer = module_to_layer(timm_module)
    built = layer_to_module(layer)
    built.load_state_dict(timm_module.state_dict())
    x = torch.randn(2, 3, h, w)
    with torch.no_grad():
        assert torch.equal(built(x), timm_module(x))
    grad = Backward(needs_grad=(True,), weights_grad=kind == "conv")
    shape = layer.output_shape(tuple(x.shape))
    assert _sizes(layer.saved(grad, shape, tuple(x.shape))) == _sizes(measure_layer(layer, grad, shape, tuple(x.shape)))


def _sizes(saved):
    """Saved tensors as (which, elements, dtype): a measured new tensor is named by its size."""
    return sorted((s.kept.value, s.index, math.prod(s.shape), s.dtype or "float32") for s in saved)


@settings(max_examples=40, deadline=None)
@given(h=sizes, w=sizes, k=kernels, s=strides, d=st.integers(1, 2), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), experts=st.integers(1, 4), padding=st.sampled_from(["", "same", "valid"]))
def test_cond_conv_equals_the_timm_module(h, w, k, s, d, groups, bias, experts, padding):
    """Per-sample kernels mixed from the experts by the routing weights: a conv's sizes, every
    expert's parameters, the mix's and the convolutions' MACs (FlopCounterMode's matmul and
    grouped conv; the conv's bias per position as torchinfo counts it)."""
    module = cond_conv2d.CondConv2d(4, 6, k, stride=s, padding=padding, dilation=d, groups=groups,
                                    bias=bias, num_experts=experts)
    layer = module_to_layer(module)
    assert isinstance(layer, CondConv2d) and layer.num_experts == experts
    assert (layer.padding == "tf_same") == module.dynamic_padding
    x, routing = torch.randn(3, 4, h, w), torch.rand(3, experts)
    try:
        with torch.no_grad():
            out = module(x, routing)
    except RuntimeError:  # a static padding too small for the kernel: torch refuses, so must we
        with pytest.raises(ShapeError):
            layer.output_shape(tuple(x.shape), tuple(routing.shape))
        return
    shape = layer.output_shape(tuple(x.shape), tuple(routing.shape))
    assert shape == tuple(out.shape)
    assert layer.param_count(tuple(x.shape), tuple(routing.shape)) == sum(p.numel() for p in module.parameters())
    macs = layer.mac_count(shape, tuple(x.shape), tuple(routing.shape))
    assert macs == _flop_macs(lambda t: module(t, routing), x) + (out.numel() if bias else 0)
    with pytest.raises(ShapeError, match="routing weights must be"):
        layer.output_shape(tuple(x.shape), (3, experts + 1))


def test_only_timm_s_own_classes_are_read():
    """A class that only looks like timm's (its module and name), or a subclass, whose forward
    may differ, is not read as a TF-'SAME' layer; timm is never imported to find out."""
    lookalike = type("Conv2dSame", (torch.nn.Conv2d,), {"__module__": "timm.layers.conv2d_same"})
    sub = type("Mine", (timm_layers.Conv2dSame,), {})
    assert module_to_layer(lookalike(3, 4, 3)) is None
    assert module_to_layer(sub(3, 4, 3)) is None
    assert isinstance(module_to_layer(timm_layers.Conv2dSame(3, 4, 3)), Conv2d)


def test_std_conv_with_both_paddings_is_not_a_layer():
    """StdConv2dSame pads 'SAME' and then by its own ``padding``, should one set both: no single
    layer says that, so it is measured."""
    module = timm_layers.StdConv2dSame(3, 4, 3, stride=2)
    module.padding = (1, 1)
    assert module_to_layer(module) is None


class _SameNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = timm_layers.Conv2dSame(3, 8, 3, stride=2)
        self.norm = torch.nn.BatchNorm2d(8)
        self.pool = pool2d_same.MaxPool2dSame(3, 2)
        self.conv = timm_layers.StdConv2dSame(8, 8, 4, stride=2, padding="SAME")
        self.avg = pool2d_same.AvgPool2dSame(2, 2)

    def forward(self, x):
        return self.avg(self.conv(self.pool(self.norm(self.stem(x)).relu())))


def test_a_model_of_same_layers_traces_with_every_row_and_field():
    """Before, each of these modules made torch.fx fail and the model went the hook route."""
    model = _SameNet().eval()
    x = torch.randn(1, 3, 37, 50)
    assert shapecalc.load_model(model).torch_import.route == "fx"
    result = shapecalc.analyze(model, tuple(x.shape))
    rows = {r.name: r for r in result.records}
    assert {"stem", "pool", "conv", "avg"} <= set(rows)
    assert result.output_shape == tuple(model(x).shape)
    for name in ("stem", "pool", "conv", "avg"):
        rf = rows[name].rf
        assert rf is not None and rf is not FieldRule.UNKNOWN, name
    # each window adds (k − 1) × the jump so far: k3 s2, k3 s2, k4 s2, k2 s2 → 3, 7, 19, 27
    assert [a.size for a in rows["avg"].rf] == [3 + 2 * 2 + 3 * 4 + 1 * 8] * 2


def test_a_cond_conv_block_traces_and_its_field_is_global():
    """timm's CondConvResidual (routing from a pooled map, then three CondConvs, one strided with
    TF 'SAME' padding) traces as one row per CondConv; the routing reads the whole map, so the
    fields after it are global, as autograd would find every output reaching every pixel."""
    blocks = pytest.importorskip("timm.models._efficientnet_blocks")
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        blocks.CondConvResidual(8, 16, stride=2, pad_type="same", num_experts=3, exp_ratio=2.0)).eval()
    x = torch.randn(2, 3, 21, 30)
    assert shapecalc.load_model(model).torch_import.route == "fx"
    result = shapecalc.analyze(model, tuple(x.shape))
    assert result.output_shape == tuple(model(x).shape)
    conds = [r for r in result.records if isinstance(r.layer, CondConv2d)]
    assert [r.name for r in conds] == ["1.conv_pw", "1.conv_dw", "1.conv_pwl"]
    assert conds[1].layer.padding == "tf_same" and conds[1].output_shape[2:] == (11, 15)
    assert [r.rf for r in conds] == [None, None, None]  # global
    assert result.records[0].rf[0].size == 3
    assert result.total_params == sum(p.numel() for p in model.parameters())
