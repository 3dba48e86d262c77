"""The library's front door: turn whatever names a model into an analysed graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blocks import Block
from .errors import ShapeError, SpecError
from .graph import Analysis, Graph, analyze_graph, smallest_input
from .layers import Shape


@dataclass
class ModelSource:
    """A model ready for analysis: its graph, the spec tree (when it has one) and its default input."""

    name: str
    graph: Graph
    default_input: Shape | None
    spec: Block | None = None
    description: str = ""
    source: str = ""


def load_model(model: Any, **kwargs: Any) -> ModelSource:
    """Accept a zoo name, a spec :class:`Block`, a :class:`Graph` or a :class:`ModelSource`."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, Graph):
        return ModelSource(model.name, model, None)
    if isinstance(model, Block):
        return ModelSource("model", model.to_graph("model"), None, model)
    if isinstance(model, str):
        from .zoo import get_entry

        entry = get_entry(model)
        spec = entry.spec(**kwargs)
        return ModelSource(entry.name, spec.to_graph(entry.name), entry.default_input, spec,
                           entry.description, entry.source)
    raise SpecError(f"cannot analyse a {type(model).__name__}; give a zoo name, a spec or a graph")


def analyze(model: Any, input_shape: Shape | None = None, dtype: str = "float32") -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every node of ``model``.

    ``input_shape`` defaults to the model's own (zoo models have one). Raises
    :class:`~shapecalc.errors.ShapeError` naming the first node that cannot take its input.
    """
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    result = analyze_graph(src.graph, tuple(shape), dtype)
    result.model = src.name
    return result


def minimum_input(model: Any, input_shape: Shape | None = None) -> int | None:
    """Smallest square spatial size the model accepts (``None`` if none up to 4096)."""
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    return smallest_input(src.graph, tuple(shape))


__all__ = ["ModelSource", "ShapeError", "analyze", "load_model", "minimum_input"]
