"""shapecalc: the shape, parameter and cost story of a convolutional network, without torch.

``analyze("alexnet")`` answers in microseconds per layer; torch is only imported by
``shapecalc.torch_bridge`` and ``shapecalc.train``, and only when they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shapecalc.core.arithmetic import (
    conv_output_size, dropped_pixels, effective_kernel, pool_output_size, same_padding,
    solve_padding, transposed_conv_output_size,
)
from shapecalc.core import registry as _registry
from shapecalc.core.errors import (
    ArgumentError, ConfigError, LayerError, Reason, ShapecalcError, ShapeError, SpecError, UsageError,
)

__version__ = "0.1.0"

#: The package's layers, lowest first. A module may import its own layer and those before it,
#: never one after it, not even lazily inside a function (``tests/test_layering.py`` reads every
#: import); this package's ``__init__`` and ``__main__`` sit above them all. The README's "How it
#: is built" table is checked against this order.
LAYERS = ("core", "torch_bridge", "models", "diagnose", "output", "train", "cli")



def _find_renderers() -> None:
    """Fill the renderer registry: the results live in ``core`` and cannot import the
    renderers above them, so this package, above every layer, connects the two."""
    from shapecalc.output.registry import discover

    discover()


_registry.find_renderers_with(_find_renderers)

if TYPE_CHECKING:
    from shapecalc.diagnose.size_search import minimum_input
    from shapecalc.models.api import analyze, load_model
    from shapecalc.models.model_source import ModelSource
    from shapecalc.output.summary import ModelSummary, summary
    from shapecalc.train.trained import load_trained

#: Loaded on first use (PEP 562): ``shapecalc layer`` needs only the arithmetic, and building
#: the ~80 layer dataclasses behind the model API is most of the package's import time.
_LAZY = {"ModelSource": "models.model_source", "analyze": "models.api", "load_model": "models.api",
         "minimum_input": "diagnose.size_search", "ModelSummary": "output.summary", "summary": "output.summary",
         "load_trained": "train.trained"}


#: The spec-building modules, by their short public names: ``from shapecalc import layers, blocks``.
_MODULES = {"arithmetic": "core.arithmetic", "layers": "core.layers", "blocks": "core.blocks"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        import importlib

        module = importlib.import_module(f".{_MODULES[name]}", __name__)
        globals()[name] = module
        return module
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
