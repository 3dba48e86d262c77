"""The library's front door: turn whatever names a model into an analysed graph.

Every argument is checked here, at the edge, with errors that name the parameter
(:class:`~shapecalc.errors.ArgumentError`): an input shape must be 2 to 5 positive integers
(numpy integers are accepted and become ``int``); None, str, float, NaN and bool are refused.
"""

from __future__ import annotations

from typing import Any

from .blocks import Block
from .errors import ArgumentError, ConfigError, ShapeError, SpecError
from .graph import DTYPE_BYTES, Analysis, Graph, analyze_graph, smallest_input
from .layers import Shape
from .model_source import ModelSource
from .sources import is_torch_module, resolve


def load_model(model: Any, **kwargs: Any) -> ModelSource:
    """Accept a MODEL string (zoo name, spec file, ``file.py:Net``, ``module:make(...)``), a spec
    :class:`Block`, a :class:`Graph`, an ``nn.Module`` instance or a :class:`ModelSource`.

    A MODEL string naming Python (``file.py:Net``) imports and runs that code, as
    ``python file.py`` would; zoo names and spec files never run code. ``max_nodes=`` raises
    the bound on how many layers and blocks a spec file or Block may expand to (default
    :data:`~shapecalc.blocks.DEFAULT_MAX_NODES`).
    """
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, Graph):
        return ModelSource(model.name, model, None)
    if isinstance(model, Block):  # max_nodes= raises the node budget, as for spec files
        return ModelSource("model", model.to_graph("model", **kwargs), None, model)
    if isinstance(model, str):
        return resolve(model, **kwargs)
    if is_torch_module(model):  # decided without importing torch
        from .torch_bridge.fx_import import module_source

        return module_source(model)
    raise ArgumentError("model", f"cannot analyse a {type(model).__name__}; give a zoo name, a spec "
                                 "file, a spec Block, a Graph or an nn.Module")


def _dtype_arg(dtype: Any) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise ArgumentError("dtype", f"expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    return dtype


def analyze(model: Any, input_shape: Shape | None = None, dtype: str = "float32") -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every node of ``model``.

    ``input_shape`` defaults to the model's own (zoo models have one). Raises
    :class:`~shapecalc.errors.ShapeError` naming the first node that cannot take its input.
    """
    dtype = _dtype_arg(dtype)
    src = load_model(model)
    shape = src.input_shape(input_shape)
    result = analyze_graph(src.graph_at(shape), shape, dtype)
    result.model = src.name
    return result


def minimum_input(model: Any, input_shape: Shape | None = None) -> int | None:
    """Smallest square spatial size the model accepts (``None`` if none up to 4096).

    Raises :class:`~shapecalc.errors.ConfigError` when a layer's own arguments are invalid
    (no size can help) and :class:`~shapecalc.errors.SpecError` for a model recorded at one size.
    """
    src = load_model(model)
    shape = src.input_shape(input_shape)
    src.require_scannable("other input sizes")
    return smallest_input(src.graph_at(shape), shape)


__all__ = ["ConfigError", "ModelSource", "ShapeError", "SpecError", "analyze", "load_model",
           "minimum_input"]
