"""The library's front door: turn whatever names a model into an analysed graph."""

from __future__ import annotations

from typing import Any, Sequence

from .blocks import Block
from .errors import ShapeError, SpecError
from .graph import DTYPE_BYTES, Analysis, Graph, analyze_graph, input_list, smallest_input
from .layers import Shape
from .model_source import ModelSource


def load_model(model: Any, **kwargs: Any) -> ModelSource:
    """Accept a MODEL string (zoo name, spec file, ``file.py:Net``, ``module:make(...)``), a spec
    :class:`Block`, a :class:`Graph`, an ``nn.Module`` instance or a :class:`ModelSource`."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, Graph):
        return ModelSource(model.name, model, None)
    if isinstance(model, Block):
        return ModelSource("model", model.to_graph("model"), None, model)
    if isinstance(model, str):
        from .sources import resolve

        return resolve(model, **kwargs)
    from .sources import is_torch_module

    if is_torch_module(model):  # decided without importing torch
        from .torch_bridge.fx_import import module_source

        return module_source(model)
    raise SpecError(f"cannot analyse a {type(model).__name__}; give a zoo name, a spec file, "
                    "a spec Block, a Graph or an nn.Module")


def analyze(model: Any, input_shape: Any = None, dtype: str = "float32", *,
            input_dtypes: Sequence[str] | None = None, mode: str = "eval") -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every node of ``model``.

    ``input_shape`` defaults to the model's own (zoo models have one); a model whose forward
    takes several tensors gets one shape each: ``[(1, 3, 224, 224), (1, 77)]``.
    ``input_dtypes`` names each input's element type (``["float32", "int64"]`` for token ids;
    default float32); ``dtype`` is the element type memory figures assume. An ``nn.Module``
    is analysed in ``mode="eval"`` (as torchinfo; its own mode is restored afterwards) or
    ``"train"`` (training-only branches such as auxiliary heads). Raises
    :class:`~shapecalc.errors.ShapeError` naming the first node that cannot take its input.
    """
    if mode not in ("eval", "train"):
        raise SpecError(f"mode: choose 'eval' or 'train', got {mode!r}")
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    shapes = input_list(shape)
    kinds = _input_dtypes(input_dtypes, len(shapes))
    if src.torch_import is not None:  # torch is already imported: the module came from it
        from .torch_bridge.fx_import import analyze_source

        result = analyze_source(src, shapes, kinds, dtype, mode)
    else:
        graph = src.graph_for(shapes[0]) if src.graph_for is not None else src.graph
        result = analyze_graph(graph, shapes if len(shapes) > 1 else shapes[0], dtype, kinds)
        if mode == "train":
            result.mode = "train"  # a spec has no training-only branches: same graph
    result.model = src.name
    return result


def _input_dtypes(values: Sequence[str] | str | None, count: int) -> tuple[str, ...] | None:
    """``None`` → float32 for all; one name → every input; else one per input, each known."""
    if values is None:
        return None
    names = (values,) if isinstance(values, str) else tuple(values)
    if len(names) == 1 and count > 1:
        names = names * count
    bad = [n for n in names if not isinstance(n, str) or n not in DTYPE_BYTES]
    if bad or len(names) != count:
        raise SpecError(f"input_dtypes: give one of {', '.join(DTYPE_BYTES)} for each of the "
                        f"{count} input(s), got {list(names)}")
    return names


def minimum_input(model: Any, input_shape: Shape | None = None) -> int | None:
    """Smallest square spatial size the model accepts (``None`` if none up to 4096)."""
    src = load_model(model)
    shape = input_shape if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError("this model has no default input shape; pass input_shape")
    if src.graph_for is not None:
        raise SpecError(f"{src.name} was recorded at one input size (untraceable forward); "
                        "cannot scan other sizes")
    return smallest_input(src.graph, tuple(shape))


__all__ = ["ModelSource", "ShapeError", "analyze", "load_model", "minimum_input"]
