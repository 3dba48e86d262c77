"""The output metadata of a few common ops on meta tensors, computed without torch's Python kernels.

torch computes a meta op's output shape, strides and element type in Python for most ops
(``torch/_decomp``, ``_refs``): batch norm runs its whole eval-mode arithmetic on meta tensors
(about 1 ms), layer norm likewise, GELU, hard-swish and ``_safe_softmax`` 0.5-2 ms. On a small
CNN that is a fifth of a hook-recorded analysis, paid for every distinct call the meta memo has
not seen. For these ops the answer is a simple function of the inputs' metadata:

- batch norm in eval mode: the output is laid out like the input, with the running statistics'
  shape in the computation type (float32 for float16/bfloat16);
- layer norm: a contiguous output, statistics over the leading axes;
- element-wise ops on tensors of one shape, strides and type (activations, ``x * 2``, ``a + b``):
  laid out like the input; an in-place one returns its argument;
- ``_safe_softmax`` on a contiguous input, ``addmm``, convolution: contiguous;
- bicubic and bilinear resizing: laid out like the input;
- ``empty_like`` onto meta (every weight's stand-in) of a contiguous tensor: its strides.

Each rule answers only inside those conditions: a dense input (the strides a contiguous or
channels-last tensor of its shape has), a floating element type, arguments of the sizes torch
accepts. Anything else returns ``None`` and the caller runs torch's kernel, which also gives
torch's own error for a bad call. tests/test_meta_rules.py compares every rule with torch's
kernel over random shapes, layouts and element types; :class:`~shapecalc.torch_bridge.meta_memo`
also checks the first answer of each kind in a process against torch, so a torch whose kernel
answers otherwise switches that rule off rather than giving a different layout.
"""

from __future__ import annotations

from typing import Any, Callable

Rule = Callable[[tuple, dict], Any]

_RULES: dict[Any, Rule] | None = None
#: (shape, strides) → :func:`dense_strides`' answer: a network asks about the same few layouts.
_DENSE: dict[tuple, Any] = {}


def _contiguous_strides(shape: tuple) -> tuple:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _channels_last_strides(shape: tuple) -> tuple:
    """Strides of an ``N, C, H, W`` tensor whose channels vary fastest."""
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c)


def _dense_in(shape: tuple, stride: tuple, order: tuple) -> bool:
    """torch's own test (c10's ``compute_contiguous``, ``compute_channels_last_contiguous_2d``):
    dense with ``order``'s last axis fastest, axes of size 1 ignored."""
    expected = 1
    for axis in reversed(order):
        if shape[axis] != 1:
            if stride[axis] != expected:
                return False
            expected *= shape[axis]
    return True


def dense_strides(value: Any) -> tuple | None:
    """``value``'s strides where they are exactly those a contiguous tensor of its shape has, or
    a channels-last one, and its layout is not both at once: then torch's element-wise kernels
    lay their output out the same way. ``None`` otherwise (an ambiguous or other layout, where
    torch's choice depends on more than this rule knows)."""
    shape, stride = value.shape, value.stride()
    known = _DENSE.get((shape, stride), _DENSE)
    if known is not _DENSE:
        return known
    if len(_DENSE) > 4096:  # a long session's many sizes: start again rather than grow
        _DENSE.clear()
    known = _DENSE[shape, stride] = _dense_strides(tuple(shape), stride)
    return known


def _dense_strides(shape: tuple, stride: tuple) -> tuple | None:
    if 0 in shape:
        return None
    contiguous = _contiguous_strides(shape)
    if len(shape) != 4:
        return stride if stride == contiguous else None
    channels_last = _channels_last_strides(shape)
    if stride == contiguous and not _dense_in(shape, stride, (0, 2, 3, 1)):
        return stride
    if stride == channels_last and not _dense_in(shape, stride, (0, 1, 2, 3)):
        return stride
    return None


def rules() -> dict[Any, Rule]:
    """Op overload → rule ``(args, kwargs) → output or None`` (built once torch is imported)."""
    global _RULES
    if _RULES is None:
        _RULES = _build()
    return _RULES


def _build() -> dict[Any, Rule]:
    import torch

    aten = torch.ops.aten
    plain = (torch.Tensor, torch.nn.Parameter)
    floating = {torch.float32, torch.float64, torch.float16, torch.bfloat16}
    numbers = (int, float)

    def computation(dtype: Any) -> Any:
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def meta_float(value: Any) -> bool:
        return (type(value) in plain and value.is_meta and value.layout is torch.strided
                and value.dtype in floating)

    def empty(shape: tuple, stride: tuple, dtype: Any) -> Any:
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")

    def like(x: Any) -> Any:
        stride = dense_strides(x) if meta_float(x) else None
        return None if stride is None else empty(x.shape, stride, x.dtype)

    def stats_vector(value: Any, channels: int) -> bool:
        return meta_float(value) and tuple(value.shape) == (channels,) and value.stride() == (1,)

    def batch_norm_eval(x, weight, bias, mean, var, eps) -> Any:
        if x.dim() < 2 or not isinstance(eps, numbers):
            return None
        c = x.shape[1]
        if not (stats_vector(mean, c) and stats_vector(var, c)
                and all(p is None or stats_vector(p, c) for p in (weight, bias))):
            return None
        out = like(x)
        if out is None:
            return None
        kind = computation(x.dtype)
        return out, empty((c,), (1,), kind), empty((c,), (1,), kind)

    def native_batch_norm(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 8 or args[5] is not False or not isinstance(args[6], numbers):
            return None
        x, weight, bias, mean, var, _, _, eps = args
        return batch_norm_eval(x, weight, bias, mean, var, eps)

    def batch_norm_no_training(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 7 or not isinstance(args[5], numbers):
            return None
        x, weight, bias, mean, var, _, eps = args
        return batch_norm_eval(x, weight, bias, mean, var, eps)

    def native_layer_norm(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 5:
            return None
        x, normalized, weight, bias, eps = args
        if not (meta_float(x) and isinstance(eps, numbers) and isinstance(normalized, (list, tuple))
                and normalized and all(type(n) is int for n in normalized)):
            return None
        shape, axis = tuple(x.shape), x.dim() - len(normalized)
        if axis < 0 or shape[axis:] != tuple(normalized):
            return None
        if not all(p is None or (meta_float(p) and tuple(p.shape) == shape[axis:])
                   for p in (weight, bias)):
            return None
        contiguous = _contiguous_strides(shape)
        # torch makes the input contiguous first, and takes a tensor it deems contiguous as it
        # is: odd strides on axes of size 1 stay. A layout both contiguous and channels-last
        # makes its output's layout depend on more than this rule knows.
        if (x.is_contiguous() and x.stride() != contiguous) or (
                len(shape) == 4 and _dense_in(shape, contiguous, (0, 2, 3, 1))):
            return None
        stats = shape[:axis] + (1,) * len(normalized)
        kind = computation(x.dtype)
        return (empty(shape, contiguous, x.dtype),
                empty(stats, _contiguous_strides(stats), kind),
                empty(stats, _contiguous_strides(stats), kind))

    def unary(args: tuple, kwargs: dict) -> Any:
        # The remaining arguments are the op's own settings (GELU's approximation): they
        # change values, never the layout.
        if len(args) != 1 or kwargs.keys() - {"approximate"} or kwargs.get(
                "approximate", "none") not in ("none", "tanh"):
            return None
        return like(args[0])

    def unary_in_place(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 1 or like(args[0]) is None:
            return None
        return args[0]

    def pointwise(args: tuple, kwargs: dict) -> Any:
        """``a op b`` where ``b`` is a Python number or a tensor of ``a``'s shape, strides and type."""
        if len(args) != 2 or kwargs.keys() - {"alpha"} or not all(
                type(v) in numbers for v in kwargs.values()):
            return None
        a, b = args
        if type(b) in numbers:
            return like(a)
        if not (meta_float(b) and b.dtype == a.dtype and b.shape == a.shape
                and b.stride() == a.stride()):
            return None
        return like(a)

    def safe_softmax(args: tuple, kwargs: dict) -> Any:
        x = args[0] if args else None
        dtype = kwargs.get("dtype", args[2] if len(args) > 2 else None)
        if (kwargs.keys() - {"dtype"} or len(args) not in (2, 3) or type(args[1]) is not int
                or not meta_float(x) or not -x.dim() <= args[1] < max(x.dim(), 1)
                or (dtype is not None and dtype not in floating)):
            return None
        if x.stride() != _contiguous_strides(tuple(x.shape)):
            return None
        return empty(x.shape, x.stride(), dtype or x.dtype)

    def addmm(args: tuple, kwargs: dict) -> Any:
        if len(args) != 3 or kwargs.keys() - {"beta", "alpha"} or not all(
                type(v) in numbers for v in kwargs.values()):
            return None
        bias, a, b = args
        if not (meta_float(bias) and meta_float(a) and meta_float(b)
                and bias.dtype == a.dtype == b.dtype and a.dim() == 2 and b.dim() == 2
                and a.shape[1] == b.shape[0]):
            return None
        shape = (a.shape[0], b.shape[1])
        if tuple(bias.shape) not in (shape, shape[1:]):
            return None
        return empty(shape, _contiguous_strides(shape), a.dtype)

    def convolution(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 9:
            return None
        x, weight, bias, stride, padding, dilation, transposed, _, groups = args
        if not (meta_float(x) and meta_float(weight) and weight.dtype == x.dtype
                and transposed is False and type(groups) is int and groups >= 1
                and x.dim() == weight.dim() and x.dim() in (3, 4, 5) and 0 not in x.shape
                and 0 not in weight.shape):
            return None
        k = x.dim() - 2
        settings = (stride, padding, dilation)
        if not all(isinstance(s, (list, tuple)) and len(s) == k and all(type(v) is int for v in s)
                   for s in settings):
            return None
        out_channels, in_per_group, *kernel = weight.shape
        if (in_per_group * groups != x.shape[1] or out_channels % groups
                or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0):
            return None
        if bias is not None and not (meta_float(bias) and bias.dtype == x.dtype
                                     and tuple(bias.shape) == (out_channels,)):
            return None
        spatial = []
        for size, s, p, d, kk in zip(x.shape[2:], stride, padding, dilation, kernel):
            reach = d * (kk - 1) + 1
            if size + 2 * p < reach:
                return None
            spatial.append((size + 2 * p - reach) // s + 1)
        shape = (x.shape[0], out_channels, *spatial)
        return empty(shape, _contiguous_strides(shape), x.dtype)

    def upsample(args: tuple, kwargs: dict) -> Any:
        """Bicubic and bilinear resizing: torch lays the output out as its input (contiguous or
        channels-last), unless the output's shape makes that ambiguous."""
        if kwargs or len(args) not in (3, 4, 5):
            return None
        x, size, align_corners, *scales = args
        if not (meta_float(x) and x.dim() == 4 and isinstance(size, (list, tuple)) and len(size) == 2
                and all(type(v) is int and v >= 1 for v in size) and type(align_corners) is bool
                and all(v is None or type(v) is float for v in scales)):
            return None
        stride = dense_strides(x)
        if stride is None:
            return None
        shape = (x.shape[0], x.shape[1], *size)
        contiguous, channels_last = _contiguous_strides(shape), _channels_last_strides(shape)
        if _dense_in(shape, contiguous, (0, 2, 3, 1)):  # both layouts at once
            return None
        return empty(shape, contiguous if stride == _contiguous_strides(tuple(x.shape))
                     else channels_last, x.dtype)

    meta = torch.device("meta")
    like_settings = {"dtype", "layout", "device", "pin_memory", "memory_format"}

    def empty_like_on_meta(args: tuple, kwargs: dict) -> Any:
        """A meta stand-in for a contiguous or channels-last tensor on any device (every
        weight, when a forward is recorded on meta): torch keeps a dense tensor's strides."""
        if len(args) != 1 or kwargs.keys() - like_settings:
            return None
        x, dtype = args[0], kwargs.get("dtype")
        if not (type(x) in plain and x.layout is torch.strided and not x.is_complex()
                and x.numel()  # an empty tensor's strides are anyone's
                and kwargs.get("device", x.device) == meta
                and kwargs.get("layout") in (None, torch.strided)
                and not kwargs.get("pin_memory")
                and kwargs.get("memory_format") in (None, torch.preserve_format)
                and (dtype is None or (isinstance(dtype, torch.dtype) and not dtype.is_complex))
                and (x.stride() == _contiguous_strides(tuple(x.shape))
                     or (x.dim() == 4 and dense_strides(x) is not None))):
            return None
        return empty(x.shape, x.stride(), dtype or x.dtype)

    table: dict[Any, Rule] = {
        aten.empty_like.default: empty_like_on_meta,
        aten.convolution.default: convolution,
        aten.upsample_bicubic2d.default: upsample,
        aten.upsample_bilinear2d.default: upsample,
        aten.native_batch_norm.default: native_batch_norm,
        aten._native_batch_norm_legit_no_training.default: batch_norm_no_training,
        aten.native_layer_norm.default: native_layer_norm,
        aten._safe_softmax.default: safe_softmax,
        aten.addmm.default: addmm,
    }
    for name in ("gelu", "relu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid"):
        table[getattr(aten, name).default] = unary
        table[getattr(aten, name + "_").default] = unary_in_place
    for name in ("add", "sub", "mul", "div"):
        table[getattr(aten, name).Tensor] = pointwise
        table[getattr(aten, name).Scalar] = pointwise
    return table


__all__ = ["dense_strides", "rules"]
