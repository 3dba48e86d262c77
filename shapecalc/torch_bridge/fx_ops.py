"""Which torch functions and tensor methods are engine layers, and with which arguments.

``F.max_pool2d(x, 2)`` and ``nn.MaxPool2d(2)`` are the same layer; mapping the call onto the
layer spec keeps its shape *derived* (explained, scannable over input sizes) instead of
measured. Anything not listed here is measured on the meta device instead: nothing is guessed.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from ..layers import (
    ELU, GELU, SELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
    AdaptiveMaxPool2d, AdaptiveMaxPool3d, Add, AvgPool1d, AvgPool2d, AvgPool3d, Concat, Dropout,
    Dropout1d, Dropout2d, Dropout3d, Flatten, Hardsigmoid, Hardswish, Identity, Layer, LeakyReLU,
    LogSoftmax, MaxPool1d, MaxPool2d, MaxPool3d, Mish, Mul, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
    Tanh, Upsample,
)
from ..layers.functional import Elementwise, Mean, Pad, Permute, Transpose

#: op name → (argument names after the input tensor, layer factory taking those arguments).
_POOL = ("kernel_size", "stride", "padding")
OPS: dict[str, tuple[tuple[str, ...], Callable[..., Layer]]] = {
    "relu": (("inplace",), lambda inplace=False: ReLU()),
    "relu6": (("inplace",), lambda inplace=False: ReLU6()),
    "silu": (("inplace",), lambda inplace=False: SiLU()),
    "mish": (("inplace",), lambda inplace=False: Mish()),
    "selu": (("inplace",), lambda inplace=False: SELU()),
    "hardswish": (("inplace",), lambda inplace=False: Hardswish()),
    "hardsigmoid": (("inplace",), lambda inplace=False: Hardsigmoid()),
    "sigmoid": ((), lambda: Sigmoid()),
    "tanh": ((), lambda: Tanh()),
    "gelu": (("approximate",), lambda approximate="none": GELU(approximate=approximate)),
    "leaky_relu": (("negative_slope", "inplace"),
                   lambda negative_slope=0.01, inplace=False: LeakyReLU(negative_slope)),
    "elu": (("alpha", "inplace"), lambda alpha=1.0, inplace=False: ELU(alpha)),
    "softmax": (("dim", "_stacklevel", "dtype"), lambda dim=None, **_: Softmax(dim)),
    "log_softmax": (("dim", "_stacklevel", "dtype"), lambda dim=None, **_: LogSoftmax(dim)),
    "dropout": (("p", "training", "inplace"), lambda p=0.5, **_: Dropout(p)),
    "dropout1d": (("p", "training", "inplace"), lambda p=0.5, **_: Dropout1d(p)),
    "dropout2d": (("p", "training", "inplace"), lambda p=0.5, **_: Dropout2d(p)),
    "dropout3d": (("p", "training", "inplace"), lambda p=0.5, **_: Dropout3d(p)),
    "max_pool1d": (_POOL + ("dilation", "ceil_mode", "return_indices"), MaxPool1d),
    "max_pool2d": (_POOL + ("dilation", "ceil_mode", "return_indices"), MaxPool2d),
    "max_pool3d": (_POOL + ("dilation", "ceil_mode", "return_indices"), MaxPool3d),
    "avg_pool1d": (_POOL + ("ceil_mode", "count_include_pad"), AvgPool1d),
    "avg_pool2d": (_POOL + ("ceil_mode", "count_include_pad", "divisor_override"), AvgPool2d),
    "avg_pool3d": (_POOL + ("ceil_mode", "count_include_pad", "divisor_override"), AvgPool3d),
    "adaptive_avg_pool1d": (("output_size",), AdaptiveAvgPool1d),
    "adaptive_avg_pool2d": (("output_size",), AdaptiveAvgPool2d),
    "adaptive_avg_pool3d": (("output_size",), AdaptiveAvgPool3d),
    "adaptive_max_pool1d": (("output_size", "return_indices"), AdaptiveMaxPool1d),
    "adaptive_max_pool2d": (("output_size", "return_indices"), AdaptiveMaxPool2d),
    "adaptive_max_pool3d": (("output_size", "return_indices"), AdaptiveMaxPool3d),
    "flatten": (("start_dim", "end_dim"), lambda start_dim=0, end_dim=-1: Flatten(start_dim, end_dim)),
    "interpolate": (("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                     "antialias"),
                    lambda size=None, scale_factor=None, mode="nearest", align_corners=None, **_:
                    Upsample(size, scale_factor, mode, align_corners)),
    "pad": (("pad", "mode", "value"),
            lambda pad, mode="constant", value=None: Pad(tuple(pad), mode, value)),
    "mean": (("dim", "keepdim", "dtype"), lambda dim, keepdim=False, dtype=None: Mean(dim, keepdim)),
    "transpose": (("dim0", "dim1"), Transpose),
    "contiguous": (("memory_format",), lambda **_: Identity()),
    "clone": (("memory_format",), lambda **_: Identity()),
    "detach": ((), lambda: Identity()),
}

#: Element-wise binary ops: both operands tensors → Add/Mul (broadcasting); one a number → Elementwise.
BINARY = {"add": "add", "iadd": "add", "add_": "add", "mul": "mul", "imul": "mul", "mul_": "mul",
          "sub": "sub", "isub": "sub", "sub_": "sub", "truediv": "div", "div": "div", "div_": "div"}
#: In-place twins that mean the same layer (``F.relu_``, ``x.relu_()``).
ALIASES = {"relu_": "relu", "sigmoid_": "sigmoid", "tanh_": "tanh", "concat": "cat", "concatenate": "cat"}


def op_name(node) -> str:
    """The op's plain name: ``operator.add`` → ``add``, ``F.max_pool2d`` → ``max_pool2d``."""
    if node.op == "call_method":
        name = str(node.target)
    elif node.target is getattr:
        name = "getattr"
    else:
        name = getattr(node.target, "__name__", str(node.target))
        if name == "fn" and hasattr(node.target, "__qualname__"):  # boolean_dispatch wrapper
            name = _dispatch_name(node.target)
    name = name.lstrip("_") if name not in ("__getitem__",) else "getitem"
    return ALIASES.get(name, name)


def _dispatch_name(fn: Any) -> str:
    import torch.nn.functional as F

    for name in ("max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d",
                 "adaptive_max_pool2d", "adaptive_max_pool3d", "fractional_max_pool2d"):
        if getattr(F, name, None) is fn:
            return name
    return "fn"


def is_torch_op(node) -> bool:
    """Only torch's own functions (and operators) are mapped by name; a user's ``relu`` is not."""
    if node.op == "call_method":
        return True
    module = getattr(node.target, "__module__", None) or ""
    return node.target in (operator.add, operator.iadd, operator.mul, operator.imul, operator.sub,
                           operator.isub, operator.truediv) or module.startswith("torch") or (
        type(node.target).__name__ == "builtin_function_or_method")


def bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """Positional arguments (after the input) and keywords → one dict; None if too many given."""
    if len(args) > len(names):
        return None
    out = dict(zip(names, args))
    for key, value in kwargs.items():
        if key in ("input", "self"):
            continue
        out[key] = value
    return out


def tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def make_binary(op: str, tensors: int) -> Layer:
    if tensors >= 2 and op == "add":
        return Add()
    if tensors >= 2 and op == "mul":
        return Mul()
    return Elementwise(op=op)


def make_cat(dim: int) -> Layer:
    return Concat(dim)


def make_permute(dims: tuple[int, ...]) -> Layer:
    return Permute(tuple(dims))
