"""The library's front door: turn whatever names a model into an analysed graph.

Every argument is checked here, at the edge, with errors that name the parameter
(:class:`~shapecalc.core.errors.ArgumentError`): an input shape must be 2 to 5 positive integers
(numpy integers are accepted and become ``int``); None, str, float, NaN and bool are refused.
"""

from __future__ import annotations

from typing import Any, Sequence

from shapecalc.core.bounds import Bound
from shapecalc.core.blocks import Block
from shapecalc.core.collector import paused_collector
from shapecalc.core.errors import ArgumentError, ConfigError, ShapeError, SpecError
from shapecalc.core.graph import Analysis, Graph, Mode, analyze_graph
from shapecalc.core.inputs import Inputs, dtype_name
from shapecalc.core.layers import Shape
from shapecalc.models.build_options import build_options
from shapecalc.models.model_source import ModelSource, module_source
from shapecalc.models.sources import is_torch_module, resolve


#: ``max_nodes=``: a positive integer, at most what a 64-bit count holds.
NODE_BUDGET = Bound(int, 1, 2**63 - 1)


@paused_collector()
def load_model(model: Any, *, meta: bool | None = None, seq_len: int | None = None,
               **kwargs: Any) -> ModelSource:
    """Accept a MODEL string (zoo name, spec file, ``file.py:Net``, ``module:make(...)``), a spec
    :class:`Block`, a :class:`Graph`, an ``nn.Module`` instance or a :class:`ModelSource`.

    A MODEL string naming Python (``file.py:Net``) imports and runs that code, as
    ``python file.py`` would; zoo names and spec files never run code. ``max_nodes=`` raises
    the bound on how many layers and blocks a spec file or Block may expand to (default
    :data:`~shapecalc.core.blocks.DEFAULT_MAX_NODES`).
    """
    if "max_nodes" in kwargs and kwargs["max_nodes"] is not None:
        kwargs["max_nodes"] = NODE_BUDGET.check("max_nodes", kwargs["max_nodes"])
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, Graph):
        return ModelSource(model.name, model, None)
    if isinstance(model, Block):  # max_nodes= raises the node budget, as for spec files
        return ModelSource("model", model.to_graph("model", **kwargs), None, model)
    if isinstance(model, str):
        with build_options(meta=meta, seq_len=seq_len):
            return resolve(model, **kwargs)
    if is_torch_module(model):  # decided without importing torch
        return module_source(model)
    raise ArgumentError("model", f"cannot analyse a {type(model).__name__}; give a zoo name, a spec "
                                 "file, a spec Block, a Graph or an nn.Module")


@paused_collector()
def analyze(model: Any, input_shape: Any = None, dtype: str = "float32", *,
            input_dtypes: Sequence[str] | None = None, mode: str = "eval") -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every node of ``model``.

    ``input_shape`` defaults to the model's own (zoo models have one); a model whose forward
    takes several tensors gets one shape each: ``[(1, 3, 224, 224), (1, 77)]``.
    ``input_dtypes`` names each input's element type (``["float32", "int64"]`` for token ids;
    default float32); ``dtype`` is the element type memory figures assume. An ``nn.Module``
    is analysed in ``mode="eval"`` (as torchinfo; its own mode is restored afterwards) or
    ``"train"`` (training-only branches such as auxiliary heads). Raises
    :class:`~shapecalc.core.errors.ShapeError` naming the first node that cannot take its input.

    ``input_shape`` may also be :class:`~shapecalc.core.inputs.Inputs`, the checked value that
    ``diagnose``, ``summary()`` and the CLI build at their edge (``input_dtypes`` is then unused).
    """
    dtype = dtype_name(dtype, "dtype")
    mode = Mode.of(mode)
    src = load_model(model)
    inputs = input_shape if isinstance(input_shape, Inputs) else src.inputs(input_shape, input_dtypes)
    if src.torch_import is not None:  # torch is already imported: the module came from it
        from functools import partial

        from shapecalc.torch_bridge.fx_import import Route, analyze_import, in_mode
        from shapecalc.torch_bridge.saved import measure_layer, recorded_saved, traced_saved

        imp = in_mode(src.torch_import, mode)
        result = analyze_import(imp, inputs, dtype, mode)
        result.saved_measure = measure_layer  # layers without a saved-tensor rule: measured
        # One forward recorded with autograd saving: storages and saved tensors per node
        if imp.route is Route.HOOKS:
            result.saved_run = partial(recorded_saved, imp.module, result.graph.name)
        elif imp.route is Route.FX:
            result.saved_run = partial(traced_saved, imp)
    else:
        result = analyze_graph(src.graph_at(inputs.first), inputs, dtype)
        if mode is Mode.TRAIN:
            result.mode = mode  # a spec has no training-only branches: same graph
    result.model = src.name
    return result


__all__ = ["ConfigError", "ModelSource", "ShapeError", "SpecError", "analyze", "load_model"]
