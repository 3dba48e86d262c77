"""Torch's own count of the multiply-accumulates a piece of code runs, or ``None`` if it cannot say.

Measured nodes (an op or module the engine has no rule for) take their MACs from torch's FLOP
counter formulas (``torch.utils.flop_counter``: matrix products, convolutions, attention
kernels; FLOPs / 2). That counter silently counts 0 for any op it has no formula for, which is
right for element-wise ops and views but wrong for a recurrent kernel or a fused attention
kernel. :class:`MacCounter` therefore also remembers every op that does such work without a
formula (and every op outside torch's own namespaces): code that ran one has *unknown* MACs,
shown as ``?``, never as a number. Products with a vector (``dot``, ``mv``: ``x @ v``), which
torch's counter has no formula for either, are counted here by the rule its ``mm`` formula
follows.

The counter is a dispatch mode, so it sees every op torch runs, whichever Python code (a
``Conv1D`` of transformers, ``F.conv2d`` in a timm layer, attention's matmuls) called it.
Attention runs on its math path here (on the meta device it always does), whose two batched
products the counter sees.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable, Iterator

#: Ops that multiply-accumulate but have no formula in torch's FLOP counter (recurrent kernels,
#: fused attention and transformer fast paths, CPU flash attention, integer and FFT products).
_UNCOUNTED_WORK = (
    "lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell",
    "rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "mkldnn_rnn_layer",
    "cudnn_rnn", "miopen_rnn", "_native_multi_head_attention", "_transformer_encoder_layer_fwd",
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
    "mkldnn_convolution", "mkldnn_linear", "_int_mm", "_weight_int8pack_mm",
    "_weight_int4pack_mm", "_fft_r2c", "_fft_c2c", "_fft_c2r", "slow_conv3d_forward",
    "slow_conv_dilated2d", "slow_conv_dilated3d", "slow_conv_transpose2d", "slow_conv_transpose3d",
    "_nested_tensor_from_mask", "conv_tbc",
)
_TORCH_NAMESPACES = ("aten", "prims", "prim", "profiler", "_c10d_functional")
#: torch functions and tensor methods that multiply-accumulate nothing whatever their
#: arguments: they move, index, create, reduce or combine elements one by one, and torch's FLOP
#: counter has no formula for any op they run (only matrix products, convolutions and
#: attention kernels have one). Code made of these alone runs without the counter, which costs
#: more than a view itself on meta: a measured fx node (names from ``fx_ops.op_name``) and a
#: torch function the hook recorder sees (names from ``hook_recorder.function_label``: ``and``
#: for ``__and__``, ``T`` for the property), so both spellings are here.
MAC_FREE_OPS = frozenset({
    # shapes and Python scalars
    "getattr", "getitem", "size", "dim", "numel", "assert", "eq", "ne", "lt", "le", "gt", "ge",
    "floordiv", "mod", "neg", "int", "float", "bool", "long", "half", "len", "tensor",
    # views, copies, indexing, joins
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "swapaxes", "movedim",
    "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "contiguous", "clone",
    "detach", "unbind", "split", "chunk", "tensor_split", "narrow", "select", "roll", "flip",
    "cat", "stack", "repeat", "tile", "pad", "to", "type_as", "T", "mT",
    # creation
    "arange", "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
    "empty_like",
    # element by element, and reductions
    "add", "sub", "mul", "truediv", "div", "pow", "iadd", "imul", "isub", "radd", "rmul", "rsub",
    "invert", "and_", "or_", "and", "or", "sin", "cos", "exp", "sqrt", "rsqrt", "sigmoid",
    "tanh", "relu", "gelu", "silu", "softmax", "log_softmax", "dropout", "cumsum", "normalize",
    "masked_fill", "where", "clamp", "abs", "mean", "sum", "amax", "max", "min", "diff", "all",
    "any",
    # not an op at all: the grad mode transformers' mask helpers switch
    "set_grad_enabled",
})

_SCALARS = (int, float, bool, str, type(None))


def _counter_class() -> type:
    """The dispatch-mode class, made once torch is imported (this module never imports it)."""
    global _COUNTER
    if _COUNTER is not None:
        return _COUNTER
    import torch  # only reached from code that already runs torch (measure, the hook run)
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    uncounted = {getattr(torch.ops.aten, name) for name in _UNCOUNTED_WORK
                 if hasattr(torch.ops.aten, name)}
    aten = torch.ops.aten
    # Products with a vector, which torch's counter has no formula for (it would say 0 for
    # ``x @ v``): one multiply-accumulate per element of the matrix (or of the vectors, for a
    # dot product), as its formula for ``mm`` counts; ``addmv``'s added vector is not counted,
    # as ``addmm``'s bias is not.
    vector_products: dict[Any, Callable[[tuple], int]] = {
        aten.dot: lambda args: args[0].numel(),
        aten.vdot: lambda args: args[0].numel(),
        aten.mv: lambda args: args[0].numel(),
        aten.addmv: lambda args: args[1].numel(),
    }
    #: FLOPs by (op, argument shapes): torch's formulas map every argument to its shape with
    #: pytree first (0.1-0.2 ms a call, more than a small op itself), and a model repeats its
    #: ops at the same shapes. Only formulas torch gives shapes alone (``__wrapped__`` by its
    #: shape wrapper) are kept; those reading raw tensors always run.
    known: dict[tuple, int] = {}

    def shape_key(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return tuple(value.shape)
        kind = type(value)
        if kind is tuple or kind is list:
            return (kind, *map(shape_key, value))
        if kind in _SCALARS or isinstance(value, (torch.dtype, torch.device, torch.memory_format)):
            return (kind, value)
        raise TypeError  # an argument the key cannot hold: the formula runs

    class MacCounter(TorchDispatchMode):
        """Running totals: ``flops`` torch could count, ``unknown`` ops it could not."""

        def __init__(self) -> None:
            super().__init__()
            self.flops = 0
            self.unknown: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self.count(func, args, kwargs, out)
            return out

        def count(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
            """Add one op that ran (also called by a dispatch mode already running, the hook
            recorder's meta memo, which saves a second mode on every op)."""
            packet = func._overloadpacket
            formula = flop_registry.get(packet)
            if formula is not None:
                key = None
                if hasattr(formula, "__wrapped__"):
                    try:
                        key = (func, shape_key(args), shape_key(tuple(kwargs.items())),
                               shape_key(out))
                    except TypeError:
                        pass
                flops = known.get(key) if key is not None else None
                if flops is None:
                    flops = formula(*args, **kwargs, out_val=out)
                    if key is not None:
                        if len(known) >= 4096:  # bounded in a long-running process
                            known.clear()
                        known[key] = flops
                self.flops += flops
            elif packet in vector_products:
                self.flops += 2 * vector_products[packet](args)
            elif packet in uncounted or func.namespace not in _TORCH_NAMESPACES:
                self.unknown.append(str(packet))

        def mark(self) -> tuple[int, int]:
            return self.flops, len(self.unknown)

        def since(self, mark: tuple[int, int]) -> int | None:
            """MACs run since ``mark``, ``None`` if an op without a formula ran meanwhile."""
            flops, unknown = mark
            return None if len(self.unknown) > unknown else (self.flops - flops) // 2

    _COUNTER = MacCounter
    return MacCounter


_COUNTER: type | None = None


def mac_counter() -> Any:
    """A fresh counter (a ``TorchDispatchMode``: ``with counter: ...``)."""
    return _counter_class()()


@contextmanager
def math_attention() -> Iterator[None]:
    """Scaled dot-product attention on its math path (two batched products the counter sees)
    for real runs, where CPU would otherwise pick a fused kernel with no formula."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


def attention_macs(args: tuple) -> int | None:
    """Torch's count for ``scaled_dot_product_attention(query, key, value, ...)`` from its own
    formula (``sdpa_flop_count``: the two batched products the math path runs, which is what
    the counter sees on that path), so a real run need not watch every op of the path; ``None``
    where the formula does not apply (not 4-D, heads that do not divide) and the counter must
    run."""
    try:
        return _attention_macs(*(tuple(t.shape) for t in args[:3]))
    except (AssertionError, ValueError, TypeError, AttributeError):
        return None


@lru_cache(maxsize=1024)
def _attention_macs(query: tuple, key: tuple, value: tuple) -> int:
    """``sdpa_flop_count`` ÷ 2 by shapes, kept: its products go through torch's pytree shape
    wrapper (0.1 ms a call), and a model's layers ask at the same shapes."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value) // 2


def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int | None]:
    """``fn(*args, **kwargs)`` and torch's MACs for it (``None`` if it ran uncountable work)."""
    import torch

    counter = mac_counter()
    with counter, torch.no_grad():
        out = fn(*args, **kwargs)
    return out, counter.since((0, 0))


def mac_free(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """``fn(*args)`` made of :data:`MAC_FREE_OPS` alone, and its MACs: 0, as torch's counter
    would say, without running the counter."""
    import torch

    with torch.no_grad():
        return fn(*args), 0
