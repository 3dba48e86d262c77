"""shapecalc: the shape, parameter and cost story of a convolutional network, without torch.

``analyze("alexnet")`` answers in microseconds per layer; torch is only imported by
``shapecalc.torch_bridge`` and ``shapecalc.train``, and only when they are used.
"""

from __future__ import annotations

from .api import ModelSource, analyze, load_model, minimum_input
from .arithmetic import (
    conv_output_size, dropped_pixels, effective_kernel, pool_output_size, same_padding,
    solve_padding, transposed_conv_output_size,
)
from .errors import ConfigError, ShapecalcError, ShapeError, SpecError, UsageError

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "ModelSource", "ShapeError", "ShapecalcError", "SpecError", "UsageError",
    "__version__", "analyze", "conv_output_size", "dropped_pixels", "effective_kernel",
    "load_model", "minimum_input", "pool_output_size", "same_padding", "solve_padding",
    "transposed_conv_output_size",
]
