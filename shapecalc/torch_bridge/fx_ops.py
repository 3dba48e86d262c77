"""Which torch functions and tensor methods are engine layers, and with which arguments.

``F.max_pool2d(x, 2)`` and ``nn.MaxPool2d(2)`` are the same layer; mapping the call onto the
layer spec keeps its shape *derived* (explained, scannable over input sizes) instead of
measured. Anything not listed here is measured on the meta device instead: nothing is guessed.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, ClassVar

from shapecalc.core.errors import LayerError
from shapecalc.core.layers import (
    LayerKind,
    ELU, GELU, SELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
    AdaptiveMaxPool2d, AdaptiveMaxPool3d, Add, AvgPool1d, AvgPool2d, AvgPool3d, Concat, Dropout,
    Dropout1d, Dropout2d, Dropout3d, Flatten, Hardsigmoid, Hardswish, Identity, Layer, LeakyReLU,
    LogSoftmax, MaxPool1d, MaxPool2d, MaxPool3d, Mish, Mul, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
    Tanh, Upsample,
)
from shapecalc.core.layers.attention import ScaledDotProductAttention
from shapecalc.core.layers.embedding import Embedding
from shapecalc.core.layers.functional import BatchMatMul, Elementwise, MatMul, Mean, Pad, Permute, Transpose
from shapecalc.core.layers.norm import GroupNorm, LayerNorm, RMSNorm, _BatchNormNd
from shapecalc.core.layers.shuffle import PixelShuffle, PixelUnshuffle
from shapecalc.core.layers.basic import Linear

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
    "pixel_shuffle": (("upscale_factor",), PixelShuffle),
    "pixel_unshuffle": (("downscale_factor",), PixelUnshuffle),
    "pad": (("pad", "mode", "value"),
            lambda pad, mode="constant", value=None: Pad(tuple(pad), mode, value)),
    "mean": (("dim", "keepdim", "dtype"), lambda dim, keepdim=False, dtype=None: Mean(dim, keepdim)),
    "transpose": (("dim0", "dim1"), Transpose),
    "contiguous": (("memory_format",), lambda **_: Identity()),
    "clone": (("memory_format",), lambda **_: Identity()),
    "detach": ((), lambda: Identity()),
}

def elementwise_op(name: str) -> bool:
    """Whether torch function ``name`` is an activation or a dropout whatever its arguments
    (``relu``, ``gelu``, ``dropout``; not ``softmax``, whose ``dim`` decides)."""
    entry = OPS.get(name)
    if entry is None:
        return False
    try:
        layer = entry[1]()
    except (TypeError, ValueError, LayerError):
        return False
    return layer.kind in (LayerKind.ACTIVATION, LayerKind.DROPOUT) and not hasattr(layer, "dim")


#: Element-wise binary ops: both operands tensors → Add/Mul (broadcasting); one a number → Elementwise.
BINARY = {"add": "add", "iadd": "add", "add_": "add", "mul": "mul", "imul": "mul", "mul_": "mul",
          "sub": "sub", "isub": "sub", "sub_": "sub", "truediv": "div", "div": "div", "div_": "div"}
#: In-place twins that mean the same layer (``F.relu_``, ``x.relu_()``).
ALIASES = {"relu_": "relu", "sigmoid_": "sigmoid", "tanh_": "tanh", "concat": "cat", "concatenate": "cat",
           "matmul__": "matmul"}


def plain_call_layer(name: str, args: tuple, kwargs: dict, is_tensor: Callable[[Any], bool]
                     ) -> Layer | None:
    """The layer for a one-tensor call of :data:`OPS` whose other arguments are plain values
    (``F.relu(x)``, ``x.flatten(1)``, ``F.max_pool2d(x, 2)``), as a recorded run sees it;
    ``None`` for anything else."""
    entry = OPS.get(ALIASES.get(name, name))
    if entry is None or not args or not is_tensor(args[0]):
        return None
    names, factory = entry
    bound = bind(names, tuple(args[1:]), kwargs)
    if bound is None or any(is_tensor(v) for v in bound.values()):
        return None
    try:
        return factory(**{k: tupled(v) for k, v in bound.items()})
    except Exception:  # arguments the layer refuses: the call stays measured
        return None


#: op_name per (op kind, target) for functions and methods: a model calls few distinct ones
#: many times. Module paths are not kept (they are many, and cheap to name).
_OP_NAMES: dict[tuple[str, Any], str] = {}


def op_name(node) -> str:
    """The op's plain name: ``operator.add`` → ``add``, ``F.max_pool2d`` → ``max_pool2d``."""
    target = node.target
    if type(target) is str:  # a method, module path or attribute: its own name
        name = "getitem" if target == "__getitem__" else target.lstrip("_")
        return ALIASES.get(name, name)
    key = (node.op, target)
    try:
        return _OP_NAMES[key]
    except KeyError:
        name = _op_name(node)
        if len(_OP_NAMES) < 4096:  # bounded: targets may be a user's own functions
            _OP_NAMES[key] = name
        return name
    except TypeError:  # an unhashable callable
        return _op_name(node)


def _op_name(node) -> str:
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


# ------------------------------------------------------------------ calls that take weights
#: ``F.linear(x, self.w, self.b)``, ``F.layer_norm(x, s, self.w, self.b)``, ``F.embedding(ids,
#: self.table)``: op → (argument names after the input, names among them that are weight
#: tensors, factory). The factory gets each weight as its shape (``None`` when not given); the
#: layer it returns counts those weights, so the converter must not count them again.
Weights = dict[str, tuple[int, ...] | None]


def _linear(weight=None, bias=None) -> Layer | None:
    if weight is None or len(weight) != 2:
        return None
    return Linear(weight[1], weight[0], bias is not None)


def _embedding(weight=None, padding_idx=None, max_norm=None, norm_type=2.0,
               scale_grad_by_freq=False, sparse=False) -> Layer | None:
    if weight is None or len(weight) != 2:
        return None
    return Embedding(weight[0], weight[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)


def _layer_norm(normalized_shape, weight=None, bias=None, eps=1e-5) -> Layer | None:
    if weight is None and bias is not None:
        return None  # a bias without a weight: no nn.LayerNorm has that
    return LayerNorm(tupled(normalized_shape), eps, weight is not None, bias is not None)


def _rms_norm(normalized_shape, weight=None, eps=None) -> Layer:
    return RMSNorm(tupled(normalized_shape), eps, weight is not None)


def _group_norm(num_groups, weight=None, bias=None, eps=1e-5) -> Layer | None:
    if (weight is None) != (bias is None):
        return None
    return GroupNorm(num_groups, None, eps, weight is not None)


class FunctionalBatchNorm(_BatchNormNd):
    """``F.batch_norm(x, running_mean, running_var, weight, bias, …)`` as a norm layer wrapping
    module calls it (timm's ``BatchNormAct2d``): BatchNorm's rule at whatever rank it gets, as
    the function takes any (N, C, …) input. Defined here, not among the spec layers: no spec
    names it."""

    ranks: ClassVar[tuple[int, ...]] = (2, 3, 4, 5)

    @property
    def type_name(self) -> str:
        return "batch_norm"


def _batch_norm(running_mean=None, running_var=None, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5) -> Layer | None:
    if (weight is None) != (bias is None) or (weight is not None and len(weight) != 1):
        return None
    if not isinstance(training, bool) or not isinstance(eps, float):
        return None
    return FunctionalBatchNorm(weight[0] if weight is not None else None, eps, momentum,
                               weight is not None, running_mean is not None)


WEIGHTED_OPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable[..., Layer | None]]] = {
    "linear": (("weight", "bias"), ("weight", "bias"), _linear),
    "embedding": (("weight", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"),
                  ("weight",), _embedding),
    "layer_norm": (("normalized_shape", "weight", "bias", "eps"), ("weight", "bias"), _layer_norm),
    "rms_norm": (("normalized_shape", "weight", "eps"), ("weight",), _rms_norm),
    "group_norm": (("num_groups", "weight", "bias", "eps"), ("weight", "bias"), _group_norm),
    "batch_norm": (("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
                   ("weight", "bias"), _batch_norm),
}
#: Buffers an op reads (running statistics): they must be module attributes, not computed
#: in the forward; the layer's rule does not depend on them beyond being there.
_READ_BUFFERS = {"batch_norm": ("running_mean", "running_var")}

#: Ops on several tensors: op → (names of the tensor arguments, in order; the first ones are
#: required, ``optional`` trailing ones may be absent), the other argument names, factory.
_SDPA_TENSORS = ("query", "key", "value", "attn_mask")
_SDPA_OPTIONS = ("dropout_p", "is_causal", "scale", "enable_gqa")
#: Products of two activations (``q @ k.transpose(-2, -1)``, ``torch.bmm(a, b)``): the layers
#: have no arguments, so one value each serves every call. A product with a parameter
#: (``x @ self.w``) reads a constant, not two tensors, and stays measured.
_PRODUCTS: dict[str, Layer] = {"matmul": MatMul(), "bmm": BatchMatMul()}


def map_call(name: str, args: tuple, kwargs: dict, is_tensor: Callable[[Any], bool],
             weight_shape: Callable[[Any], tuple[int, ...] | None],
             build: Callable[..., Layer | None] | None = None
             ) -> tuple[Layer, list[Any], list[Any]] | None:
    """Map a weighted or multi-tensor call: ``(layer, tensor inputs, weight nodes it counts)``.

    ``weight_shape(value)`` is the shape of a parameter read (``get_attr``), else ``None``;
    a weight computed in the forward has no static shape, so that call is measured instead.
    ``build(key, factory, **arguments)``, if given, makes the layer (``fx_common.shared_layer``:
    a CNN's fifty ``F.batch_norm`` calls of a few widths share a few checked layers).
    """
    product = _PRODUCTS.get(name)
    if product is not None:  # positional operands only: an ``out=`` writes elsewhere
        if len(args) != 2 or kwargs or not (is_tensor(args[0]) and is_tensor(args[1])):
            return None
        return product, list(args), []
    if name == "scaled_dot_product_attention":
        bound = bind(_SDPA_TENSORS + _SDPA_OPTIONS, tuple(args), kwargs)
        if bound is None or not all(is_tensor(bound.get(t)) for t in _SDPA_TENSORS[:3]):
            return None
        mask = bound.pop("attn_mask", None)
        if mask is not None and not is_tensor(mask):
            return None
        tensors = [bound.pop(t) for t in _SDPA_TENSORS[:3]] + ([mask] if mask is not None else [])
        if any(not isinstance(v, (int, float, bool, type(None))) for v in bound.values()):
            return None
        return ScaledDotProductAttention(**bound), tensors, []
    entry = WEIGHTED_OPS.get(name)
    if entry is None or not args or not is_tensor(args[0]):
        return None
    names, weight_names, factory = entry
    bound = bind(names, tuple(args[1:]), kwargs)
    if bound is None:
        return None
    for key in _READ_BUFFERS.get(name, ()):
        value = bound.get(key)
        if value is not None:
            if weight_shape(value) is None:
                return None
            bound[key] = True  # present; its values are torch's business
    weights = []
    for key in weight_names:
        value = bound.get(key)
        if value is None:
            continue
        shape = weight_shape(value)
        if shape is None:
            return None
        weights.append(value)
        bound[key] = shape
    from torch.fx import Node

    if any(isinstance(v, Node) for v in bound.values()):  # a size computed in the forward
        return None
    try:
        layer = factory(**bound) if build is None \
            else build(("weighted", name, tuple(bound), *bound.values()), factory, **bound)
    except Exception:  # arguments the layer refuses: torch will say it when measured
        return None
    return (layer, [args[0]], weights) if layer is not None else None


# ------------------------------------------------------------------ modules → layer arguments
#: Modules whose attributes are not their constructor's arguments: type → reader returning the
#: layer's keyword arguments (every other module is read field by field, by name).
def _attention_args(m: Any) -> dict[str, Any]:
    return dict(embed_dim=m.embed_dim, num_heads=m.num_heads, dropout=float(m.dropout),
                bias=m.in_proj_bias is not None, add_bias_kv=m.bias_k is not None,
                add_zero_attn=bool(m.add_zero_attn),
                kdim=None if m.kdim == m.embed_dim else m.kdim,
                vdim=None if m.vdim == m.embed_dim else m.vdim, batch_first=bool(m.batch_first))


def _encoder_layer_args(m: Any) -> dict[str, Any]:
    import torch.nn.functional as F
    from torch import nn

    act = m.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        activation = "relu"
    elif act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        activation = "gelu"
    else:
        raise ValueError(f"activation {act!r} has no layer spec")
    attn = m.self_attn
    return dict(d_model=attn.embed_dim, nhead=attn.num_heads, dim_feedforward=m.linear1.out_features,
                dropout=float(m.dropout.p), activation=activation, layer_norm_eps=m.norm1.eps,
                batch_first=bool(attn.batch_first), norm_first=bool(m.norm_first),
                bias=m.linear1.bias is not None)


def _recurrent_args(m: Any) -> dict[str, Any]:
    # ``bias`` is a bool attribute here (not a tensor); ``proj_size`` exists on every RNN
    # module but only LSTM takes it.
    out = dict(input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
               bias=bool(m.bias), batch_first=bool(m.batch_first), dropout=float(m.dropout),
               bidirectional=bool(m.bidirectional))
    if m.mode == "LSTM":
        out["proj_size"] = m.proj_size
    elif m.mode.startswith("RNN_"):
        out["nonlinearity"] = m.nonlinearity
    return out


MODULE_ARGUMENTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "MultiheadAttention": _attention_args,
    "TransformerEncoderLayer": _encoder_layer_args,
    "LSTM": _recurrent_args,
    "GRU": _recurrent_args,
    "RNN": _recurrent_args,
}
