"""Layer specs, one frozen dataclass per PyTorch layer kind, named and parameterised like torch.

``LAYER_TYPES`` maps a type name (``"Conv2d"``) to its class: spec files, the torch bridge and
the CLI look layers up there, so adding a layer is adding a class.
"""

from __future__ import annotations

import dataclasses

from .base import RF, Layer, Shape, format_shape
from .basic import (
    ELU, GELU, SELU, AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, Flatten, Hardsigmoid,
    Hardswish, Identity, LeakyReLU, Linear, LogSoftmax, Mish, PReLU, ReLU, ReLU6, Sigmoid, SiLU,
    Softmax, Tanh, Upsample,
)
from .conv import (
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
)
from .merge import Add, Concat, Mul, broadcast_shapes, merge_rf
from .norm import (
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm2d, LayerNorm, LocalResponseNorm,
    RMSNorm,
)
from .pool import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
    AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d,
)

LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
        MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
        AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
        AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
        ReLU, ReLU6, SiLU, Hardswish, Hardsigmoid, Mish, SELU, Sigmoid, Tanh, GELU, LeakyReLU,
        ELU, PReLU, Softmax, LogSoftmax, Identity,
        Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout,
        BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm2d, GroupNorm, LayerNorm,
        LocalResponseNorm, RMSNorm, Flatten, Linear, Upsample, Add, Mul, Concat,
    )
}

# Layers of modern networks (attention, recurrent, lookup tables), one module each.
from .attention import ATTENTION_LAYERS  # noqa: E402
from .embedding import EMBEDDING_LAYERS  # noqa: E402
from .recurrent import RECURRENT_LAYERS  # noqa: E402
for _cls in ATTENTION_LAYERS + EMBEDDING_LAYERS + RECURRENT_LAYERS:
    LAYER_TYPES[_cls.__name__] = _cls
    globals()[_cls.__name__] = _cls  # importable like the rest
del _cls

from .functional import FUNCTIONAL_LAYERS  # noqa: E402  (fx-import ops: Reshape, Permute, Mean, Pad, …)
LAYER_TYPES.update({cls.__name__: cls for cls in FUNCTIONAL_LAYERS})
globals().update({cls.__name__: cls for cls in FUNCTIONAL_LAYERS})  # importable like the rest

#: Merge nodes exist in the graph but not as torch modules: the blocks that hold them do.
MERGE_TYPES = frozenset({"Add", "Mul", "Concat"})


def LazyConv2d(out_channels: int, kernel_size, **kwargs) -> Conv2d:
    """``nn.LazyConv2d``'s signature: ``in_channels`` is inferred from the input."""
    return Conv2d(None, out_channels, kernel_size, **kwargs)


def LazyLinear(out_features: int, **kwargs) -> Linear:
    """``nn.LazyLinear``'s signature: ``in_features`` is derived from the input."""
    return Linear(None, out_features, **kwargs)


def layer_from_dict(entry: dict) -> Layer:
    """Build a layer from ``{"type": "Conv2d", ...torch keyword arguments}`` (spec files)."""
    from ..errors import SpecError

    if "type" not in entry:
        raise SpecError("a layer entry needs a 'type' key")
    name = entry["type"]
    cls = LAYER_TYPES.get(name)
    if cls is None:
        import difflib

        hint = difflib.get_close_matches(str(name), LAYER_TYPES, n=1)
        raise SpecError(
            f"unknown layer type {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in entry.items() if k != "type"}
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise SpecError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(allowed))}"
        )
    for field_name in cls.inferred:
        kwargs.setdefault(field_name, None)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise SpecError(f"{name}: {err}") from None


def layer_to_dict(layer: Layer) -> dict:
    """The inverse of :func:`layer_from_dict`: only arguments that differ from torch's defaults."""
    out: dict = {"type": layer.type_name}
    for key, value in layer.arguments().items():
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


__all__ = [name for name in LAYER_TYPES] + [
    "LAYER_TYPES", "MERGE_TYPES", "Layer", "LazyConv2d", "LazyLinear", "RF", "Shape",
    "broadcast_shapes", "format_shape", "layer_from_dict", "layer_to_dict", "merge_rf",
]
