"""The library's front door: turn whatever names a model into an analysed graph."""

from __future__ import annotations

from typing import Any

from .blocks import Block
from .errors import ShapeError, SpecError
from .graph import Analysis, Graph, analyze_graph, smallest_input
from .layers import Shape
from .layers.fields import check_shape
from .model_source import ModelSource


def load_model(model: Any, **kwargs: Any) -> ModelSource:
    """Accept a MODEL string (zoo name, spec file, ``file.py:Net``, ``module:make(...)``), a spec
    :class:`Block`, a :class:`Graph`, an ``nn.Module`` instance or a :class:`ModelSource`.

    ``max_nodes=`` raises the bound on how many layers and blocks a spec file or Block may
    expand to (default :data:`~shapecalc.blocks.DEFAULT_MAX_NODES`)."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, Graph):
        return ModelSource(model.name, model, None)
    if isinstance(model, Block):  # max_nodes= raises the node budget, as for spec files
        return ModelSource("model", model.to_graph("model", **kwargs), None, model)
    if isinstance(model, str):
        from .sources import resolve

        return resolve(model, **kwargs)
    from .sources import is_torch_module

    if is_torch_module(model):  # decided without importing torch
        from .torch_bridge.fx_import import module_source

        return module_source(model)
    raise SpecError(f"cannot analyse a {type(model).__name__}; give a zoo name, a spec file, "
                    "a spec Block, a Graph or an nn.Module")


def analyze(model: Any, input_shape: Shape | None = None, dtype: str = "float32") -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every node of ``model``.

    ``input_shape`` defaults to the model's own (zoo models have one). Raises
    :class:`~shapecalc.errors.ShapeError` naming the first node that cannot take its input.
    """
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    shape = check_shape(shape, "input_shape")  # numpy ints become ints; NaN, 2.5, True refused
    graph = src.graph_for(tuple(shape)) if src.graph_for is not None else src.graph
    result = analyze_graph(graph, tuple(shape), dtype)
    result.model = src.name
    return result


def minimum_input(model: Any, input_shape: Shape | None = None) -> int | None:
    """Smallest square spatial size the model accepts (``None`` if none up to 4096)."""
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    shape = check_shape(shape, "input_shape")
    if src.graph_for is not None:
        raise SpecError(f"{src.name} was recorded at one input size (untraceable forward); "
                        "cannot scan other sizes")
    return smallest_input(src.graph, tuple(shape))


__all__ = ["ModelSource", "ShapeError", "analyze", "load_model", "minimum_input"]
