"""Every meta rule gives exactly what torch's own meta kernel gives, wherever it answers at all."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from hypothesis import assume, given, settings, strategies as st

from shapecalc.torch_bridge.meta_memo import meta_memo
from shapecalc.torch_bridge.meta_rules import rules

aten = torch.ops.aten
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64, torch.int64]
LAYOUTS = ["contiguous", "channels_last", "permuted", "sliced", "expanded", "odd_unit_strides",
           "offset"]


def metadata(value):
    return (tuple(value.shape), value.stride(), value.storage_offset(), value.dtype,
            value.device.type, value.requires_grad)


def outputs(value):
    return tuple(map(metadata, value if isinstance(value, tuple) else (value,)))


@st.composite
def tensors(draw, shape, dtype=None):
    """A meta tensor of ``shape`` in one of several layouts torch gives real code."""
    shape = tuple(shape)
    dtype = dtype or draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    meta = dict(dtype=dtype, device="meta")
    if layout == "channels_last" and len(shape) in (4, 5):
        fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
        return torch.empty(shape, **meta).to(memory_format=fmt)
    if layout == "permuted" and len(shape) > 1:
        perm = draw(st.permutations(range(len(shape))))
        inverse = [perm.index(i) for i in range(len(shape))]
        return torch.empty([shape[p] for p in perm], **meta).permute(inverse)
    if layout == "sliced" and shape:
        return torch.empty(shape[:-1] + (shape[-1] * 2,), **meta)[..., ::2]
    if layout == "expanded" and shape:
        axis = draw(st.integers(0, len(shape) - 1))
        return torch.empty(shape[:axis] + (1,) + shape[axis + 1:], **meta).expand(shape)
    if layout == "odd_unit_strides":
        base = torch.empty(shape, **meta)
        strides = [draw(st.integers(1, 50)) if size == 1 else step
                   for size, step in zip(shape, base.stride())]
        return torch.empty_strided(shape, strides, **meta)
    if layout == "offset":
        return torch.empty(int(torch.Size(shape).numel()) + 3, **meta)[3:].view(shape)
    return torch.empty(shape, **meta)


shapes = st.lists(st.integers(1, 4), min_size=2, max_size=5)


def same_as_torch(func, args, kwargs=None):
    """The rule's answer, if any, equals torch's; returns whether the rule answered."""
    kwargs = kwargs or {}
    answer = rules()[func](args, kwargs)
    if answer is None:
        return False
    expected = func(*args, **kwargs)
    assert outputs(answer) == outputs(expected)
    if not func._schema.is_mutable:  # a fresh tensor, never one of the arguments
        answers = answer if isinstance(answer, tuple) else (answer,)
        assert all(a is not v for a in answers for v in args)
    else:
        assert answer is args[0] and expected is args[0]
    return True


@st.composite
def norm_parameter(draw, size, dtype=None):
    """A weight, bias or running statistic: mostly right, sometimes of a size torch refuses."""
    kind = draw(st.sampled_from(["right", "right", "right", "none", "wrong_size", "strided"]))
    dtype = dtype or draw(st.sampled_from(DTYPES[:4]))
    if kind == "none":
        return None
    if kind == "wrong_size":
        return torch.empty(size + 1, dtype=dtype, device="meta")
    if kind == "strided":
        return torch.empty(size * 2, dtype=dtype, device="meta")[::2]
    return torch.empty(size, dtype=dtype, device="meta")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shape=shapes, legit=st.booleans())
def test_batch_norm_in_eval_mode(data, shape, legit):
    x = data.draw(tensors(shape))
    c = shape[1]
    weight, bias = data.draw(norm_parameter(c)), data.draw(norm_parameter(c))
    mean, var = data.draw(norm_parameter(c)), data.draw(norm_parameter(c))
    assume(mean is not None and var is not None)
    if legit:
        args = (x, weight, bias, mean, var, 0.1, 1e-5)
        same_as_torch(aten._native_batch_norm_legit_no_training.default, args)
    else:
        same_as_torch(aten.native_batch_norm.default, (x, weight, bias, mean, var, False, 0.1, 1e-5))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shape=shapes, axes=st.integers(1, 3), wrong=st.booleans())
def test_layer_norm(data, shape, axes, wrong):
    x = data.draw(tensors(shape))
    normalized = list(shape[-axes:])
    if wrong:
        normalized[0] += 1
    weight = data.draw(st.sampled_from([None, "right"]))
    weight = None if weight is None else torch.empty(normalized, dtype=data.draw(
        st.sampled_from(DTYPES[:4])), device="meta")
    bias = data.draw(st.sampled_from([None, weight]))
    same_as_torch(aten.native_layer_norm.default, (x, normalized, weight, bias, 1e-5))


UNARY = ["gelu", "relu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid"]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(1, 4), min_size=0, max_size=5),
       name=st.sampled_from(UNARY), in_place=st.booleans())
def test_activations(data, shape, name, in_place):
    x = data.draw(tensors(shape))
    kwargs = {"approximate": data.draw(st.sampled_from(["none", "tanh"]))} if name == "gelu" else {}
    if in_place:
        kwargs = {}
        try:  # torch refuses some layouts in place: the rule must then not have answered
            expected = getattr(aten, name + "_").default(x.clone())
        except RuntimeError:
            assert rules()[getattr(aten, name + "_").default]((x,), {}) is None
            return
        del expected
        same_as_torch(getattr(aten, name + "_").default, (x,))
    else:
        same_as_torch(getattr(aten, name).default, (x,), kwargs)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=shapes, name=st.sampled_from(["add", "sub", "mul", "div"]),
       other=st.sampled_from(["tensor", "same", "int", "float", "broadcast"]),
       alpha=st.sampled_from([None, 2, 0.5]))
def test_arithmetic(data, shape, name, other, alpha):
    x = data.draw(tensors(shape))
    if other == "same":
        y = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
    elif other == "tensor":
        y = data.draw(tensors(shape))
    elif other == "broadcast":
        y = torch.empty(shape[1:], dtype=x.dtype, device="meta")
    else:
        y = 3 if other == "int" else 2.5
    op = getattr(getattr(aten, name), "Tensor" if isinstance(y, torch.Tensor) else "Scalar")
    kwargs = {"alpha": alpha} if alpha is not None and name in ("add", "sub") else {}
    try:
        op(x, y, **kwargs)
    except (RuntimeError, ValueError):  # (an integer tensor, a float alpha): the rule declines
        assert rules()[op]((x, y), kwargs) is None
        return
    same_as_torch(op, (x, y), kwargs)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       dim=st.integers(-5, 4), dtype=st.sampled_from([None, torch.float32, torch.float64]))
def test_safe_softmax(data, shape, dim, dtype):
    x = data.draw(tensors(shape))
    assume(-len(shape) <= dim < len(shape))
    same_as_torch(aten._safe_softmax.default, (x, dim) if dtype is None else (x, dim, dtype))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5),
       bias_shape=st.sampled_from(["n", "mn", "1n", "m1"]),
       scales=st.sampled_from([{}, {"beta": 0}, {"alpha": 2, "beta": 0.5}]))
def test_addmm(data, m, k, n, bias_shape, scales):
    dtype = data.draw(st.sampled_from(DTYPES[:4]))
    a, b = data.draw(tensors((m, k), dtype)), data.draw(tensors((k, n), dtype))
    shape = {"n": (n,), "mn": (m, n), "1n": (1, n), "m1": (m, 1)}[bias_shape]
    bias = data.draw(tensors(shape, data.draw(st.sampled_from([dtype, torch.float32]))))
    same_as_torch(aten.addmm.default, (bias, a, b), scales)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), rank=st.integers(1, 3), batch=st.integers(1, 2), groups=st.integers(1, 3),
       per_group=st.integers(1, 2), out_per_group=st.integers(1, 3), with_bias=st.booleans(),
       same_dtype=st.booleans())
def test_convolution(data, rank, batch, groups, per_group, out_per_group, with_bias, same_dtype):
    sizes = data.draw(st.lists(st.integers(1, 7), min_size=rank, max_size=rank))
    kernel = data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    settings_ = [data.draw(st.lists(st.integers(lo, hi), min_size=rank, max_size=rank))
                 for lo, hi in ((1, 3), (0, 2), (1, 2))]
    dtype = data.draw(st.sampled_from(DTYPES[:4]))
    x = data.draw(tensors((batch, groups * per_group, *sizes), dtype))
    weight_groups = data.draw(st.sampled_from([groups, groups, 1]))  # sometimes a mismatch
    weight = data.draw(tensors((groups * out_per_group, per_group * groups // weight_groups,
                                *kernel), dtype if same_dtype else torch.float32))
    bias = torch.empty(groups * out_per_group, dtype=dtype, device="meta") if with_bias else None
    args = (x, weight, bias, *settings_, False, [0] * rank, groups)
    try:
        aten.convolution.default(*args)
    except RuntimeError:  # a kernel too big, channels that do not match: the rule declines
        assert rules()[aten.convolution.default](args, {}) is None
        return
    same_as_torch(aten.convolution.default, args)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(1, 4), min_size=4, max_size=4),
       size=st.lists(st.integers(1, 6), min_size=2, max_size=2),
       mode=st.sampled_from(["upsample_bicubic2d", "upsample_bilinear2d"]),
       align_corners=st.booleans(), scales=st.sampled_from([(), (None, None), (2.0, 1.5)]))
def test_upsample(data, shape, size, mode, align_corners, scales):
    x = data.draw(tensors(shape, data.draw(st.sampled_from(DTYPES[:4]))))
    same_as_torch(getattr(aten, mode).default, (x, size, align_corners, *scales))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(0, 4), min_size=0, max_size=5),
       on=st.sampled_from(["cpu", "meta"]), device=st.sampled_from(["meta", None, "cpu"]),
       dtype=st.sampled_from([None, torch.float16, torch.int64]),
       memory_format=st.sampled_from([None, torch.preserve_format, torch.contiguous_format]))
def test_empty_like(data, shape, on, device, dtype, memory_format):
    x = data.draw(tensors(shape))
    if on == "cpu":
        x = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype)
    kwargs = {k: v for k, v in (("device", device), ("dtype", dtype),
                                ("memory_format", memory_format)) if v is not None}
    answered = same_as_torch(aten.empty_like.default, (x,), kwargs)
    assert not answered or (device or on) == "meta"


def test_the_rules_answer_for_what_real_models_run():
    """The layouts networks use (contiguous, channels-last, float and half) are answered."""
    for fmt in (torch.contiguous_format, torch.channels_last):
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.empty(2, 8, 5, 5, dtype=dtype, device="meta").to(memory_format=fmt)
            c = torch.empty(8, device="meta")
            assert same_as_torch(aten.native_batch_norm.default, (x, c, c, c, c, False, 0.1, 1e-5))
            assert same_as_torch(aten.gelu.default, (x,))
            assert same_as_torch(aten.silu_.default, (x,))
            assert same_as_torch(aten.mul.Tensor, (x, torch.empty_like(x)))
            assert same_as_torch(aten.add.Scalar, (x, 1.0))
        w = torch.empty(4, 8, 3, 3, dtype=dtype, device="meta")
        assert same_as_torch(aten.convolution.default,
                             (x, w, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1))
        assert same_as_torch(aten.upsample_bicubic2d.default, (x, [7, 7], False))
    for weight in (torch.empty(4, 8, 1, 1), torch.empty(4, 8, 3, 3).to(memory_format=torch.channels_last)):
        assert same_as_torch(aten.empty_like.default, (weight,), {"device": torch.device("meta")})
    t = torch.empty(2, 7, 16, device="meta")
    w = torch.empty(16, device="meta")
    assert same_as_torch(aten.native_layer_norm.default, (t, [16], w, w, 1e-6))
    assert same_as_torch(aten._safe_softmax.default, (t, -1))
    assert same_as_torch(aten.addmm.default, (torch.empty(24, device="meta"), t.view(14, 16),
                                              torch.empty(24, 16, device="meta").t()))


def test_a_rule_that_disagrees_with_torch_is_switched_off(monkeypatch):
    """The first answer of a kind is checked against torch's kernel; a wrong rule is never
    used for that kind again (a torch whose kernel lays its output out otherwise)."""
    from shapecalc.torch_bridge import meta_rules

    table = dict(rules())
    table[aten.hardsigmoid.default] = lambda args, kwargs: torch.empty(
        args[0].shape[:-1] + (9,), device="meta")
    monkeypatch.setattr(meta_rules, "_RULES", table)
    monkeypatch.setattr(meta_rules, "rules", lambda: table)
    from shapecalc.torch_bridge import meta_memo as memo_module

    monkeypatch.setattr(memo_module, "_MEMO", None)  # the memo class takes the table anew
    x = torch.empty(3, 4, device="meta")
    memo = meta_memo()
    with memo:
        results = [torch.nn.functional.hardsigmoid(x) for _ in range(3)]
    assert all(tuple(r.shape) == (3, 4) for r in results)
    assert memo.ruled == 0
    assert memo.hits == 2  # the memo still answers the repeats


def test_models_give_the_same_metadata_with_rules():
    """A conv-net block and a transformer block on meta: every output as torch gives it."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.SiLU(True),
                              torch.nn.Conv2d(8, 8, 1), torch.nn.BatchNorm2d(8),
                              torch.nn.Hardswish(True), torch.nn.Flatten(), torch.nn.LazyLinear(4))
    net(torch.zeros(1, 3, 9, 9))
    net = net.eval().to("meta")
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, activation="gelu",
                                             device="meta").eval()
    for module, x in ((net, torch.zeros(2, 3, 9, 9, device="meta")),
                      (net, torch.zeros(2, 3, 9, 9, device="meta").to(memory_format=torch.channels_last)),
                      (layer, torch.zeros(2, 5, 16, device="meta"))):
        with torch.no_grad():
            expected = metadata(module(x))
            memo = meta_memo()
            with memo:
                got = [metadata(module(x)) for _ in range(2)]
        assert got == [expected, expected]
        assert memo.ruled > 0
