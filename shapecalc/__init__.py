"""shapecalc: the shape, parameter and cost story of a convolutional network, without torch.

``analyze("alexnet")`` answers in microseconds per layer; torch is only imported by
``shapecalc.torch_bridge`` and ``shapecalc.train``, and only when they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .arithmetic import (
    conv_output_size, dropped_pixels, effective_kernel, pool_output_size, same_padding,
    solve_padding, transposed_conv_output_size,
)
from .errors import (
    ArgumentError, ConfigError, LayerError, Reason, ShapecalcError, ShapeError, SpecError, UsageError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import analyze, load_model, minimum_input
    from .model_source import ModelSource
    from .model_summary import ModelSummary, summary
    from .train.trained import load_trained

#: Loaded on first use (PEP 562): ``shapecalc layer`` needs only the arithmetic, and building
#: the ~80 layer dataclasses behind the model API is most of the package's import time.
_LAZY = {"ModelSource": "model_source", "analyze": "api", "load_model": "api", "minimum_input": "api",
         "ModelSummary": "model_summary", "summary": "model_summary",
         "load_trained": "train.trained"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shapecalc' has no attribute {name!r}")

__all__ = [
    "ArgumentError", "ConfigError", "LayerError", "ModelSource", "ModelSummary", "Reason",
    "ShapeError", "ShapecalcError", "SpecError", "UsageError",
    "__version__", "analyze", "conv_output_size", "dropped_pixels", "effective_kernel",
    "load_model", "load_trained", "minimum_input", "pool_output_size", "same_padding",
    "solve_padding", "summary", "transposed_conv_output_size",
]
