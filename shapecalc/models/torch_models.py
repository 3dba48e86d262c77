"""A model as torch sees it: the ``nn.Module`` a model builds, and the engine's shapes checked
against that module's real forward, node by node.

These load and analyse models (``models.api``) and then hand torch the work
(``torch_bridge``), so they sit in the models layer, above the bridge.
"""

from __future__ import annotations

from typing import Any

from shapecalc.core.errors import SpecError
from shapecalc.core.graph import Analysis
from shapecalc.core.layers import Shape
from shapecalc.models.api import analyze, load_model
from shapecalc.models.model_source import ModelSource
from shapecalc.torch_bridge.build import NodeCheck, spec_module, verify_shapes


def build_module(model: Any, input_shape: Shape | None = None, device: str | None = None):
    """The ``nn.Module`` of a spec (zoo name or :class:`Block`), sized for ``input_shape``.

    Inferred sizes (``in_channels``, ``in_features``) come from the engine's analysis at that
    input, so the module built is exactly the one the table describes. ``device="meta"``
    allocates no weights (for checking shapes).
    """
    src = load_model(model)
    if src.torch_import is not None:  # the user's own nn.Module: train/run that one, not a copy
        return src.torch_import.module
    if src.spec is None:
        raise SpecError(f"{src.name} has no spec tree to build a torch module from")
    result = analyze(src, input_shape)
    resolved = {r.name: r.layer for r in result.records}
    return spec_module(src.spec, resolved, device=device)


def verify(model: Any, input_shape: Any = None, device: str = "meta",
           module=None, input_dtypes: Any = None, mode: str = "eval") -> list[NodeCheck]:
    """Compare the engine's shape at every node with a real forward of the built module."""
    src = load_model(model)
    if src.torch_import is not None:  # measure what is analysed: the module in that mode
        from shapecalc.torch_bridge.fx_import import in_mode

        src = ModelSource.of_import(in_mode(src.torch_import, mode), src.source)
    result: Analysis = analyze(src, input_shape, input_dtypes=input_dtypes, mode=mode)
    if module is None and src.torch_import is not None:
        # A user's own nn.Module: measure it (never a rebuilt copy) with meta stand-in weights.
        from shapecalc.torch_bridge.fx_import import measure_nodes

        measured = measure_nodes(src.torch_import, result.inputs)
    else:
        if module is None:
            module = build_module(src, result.input_shape,
                                  device="meta" if str(device) == "meta" else None)
        measured = verify_shapes(module, result.input_shape, device=device)
    checks = [NodeCheck(r.name, r.output_shape, measured.get(r.name)) for r in result.records]
    checks += [NodeCheck(name, b.output_shape, measured.get(name)) for name, b in result.blocks.items()]
    checks.append(NodeCheck("", result.output_shape, measured.get("")))
    return checks


__all__ = ["NodeCheck", "build_module", "verify"]
