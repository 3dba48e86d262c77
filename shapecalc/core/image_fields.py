"""The part of each receptive field that lies inside the image.

The theoretical field (:class:`~shapecalc.core.arithmetic.AxisRF`) is what an output reads on an
unbounded input. On the real one every layer's borders clip it: a window that hangs over the
edge reads padding there, and an intermediate output that does not exist (a pixel a pool drops)
reads nothing. So the pixels an output really reads come from the same per-axis steps as the
theoretical field (:meth:`Layer.field_steps`), applied at the real sizes with every index kept
inside its layer's input: exactly the input pixels that autograd's gradient of that output
reaches. AlexNet's conv5 output row 5 reads rows 159…225 in theory and 159…217 of the image.

Worked out on demand (the report, ``--explain``): one pass over the graph, one list of spans per
axis per node, as long as the node's output along that axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shapecalc.core.arithmetic.receptive_field import FieldRule, Span

if TYPE_CHECKING:
    from shapecalc.core.analysis import Analysis

#: Per spatial axis, the (first, last) input pixel each output index reads inside the image
#: (``None`` where it reads none); ``None`` for a node whose outputs read every pixel;
#: ``FieldRule.UNKNOWN`` where a layer on the way has no rule.
ImageField = tuple[tuple[Span, ...], ...] | FieldRule | None


def fields_in_image(analysis: "Analysis") -> dict[str, ImageField]:
    """For every node (and every graph input) of ``analysis``, the field inside the image."""
    graph = analysis.graph
    shapes = dict(zip(graph.input_names, analysis.input_shapes or (analysis.input_shape,)))
    found: dict[str, ImageField] = {
        name: tuple(tuple((i, i) for i in range(n)) for n in shape[2:]) or None
        for name, shape in shapes.items()
    }
    nodes = {n.name: n for n in graph.nodes}
    for record in analysis.records:
        node = nodes[record.name]
        ins = record.input_shapes
        layer = record.layer or node.layer
        steps = layer.field_steps(*ins)
        sources = [found[i] for i in node.inputs]
        found[record.name] = _through(sources, steps, ins, record.output_shape)
    return found


def _through(sources: list[ImageField], steps, ins, out) -> ImageField:
    if steps is FieldRule.GLOBAL or any(s is None for s in sources):
        return None
    if steps is FieldRule.UNKNOWN or any(s is FieldRule.UNKNOWN for s in sources):
        return FieldRule.UNKNOWN
    axes = len(out) - 2
    if steps is FieldRule.POINTWISE:
        spatial = [s for s in sources if len(s) == axes]  # type: ignore[arg-type]
        if not spatial:
            return FieldRule.UNKNOWN
        merged = []
        for a in range(axes):
            columns = [s[a] for s in spatial]  # type: ignore[index]
            # a broadcast input (size 1 along the axis) reaches every output
            merged.append(tuple(_union(c[0] if len(c) == 1 else c[o] for c in columns)
                                for o in range(out[2 + a])))
        return tuple(merged)
    (source,) = sources
    if len(steps) != len(source) or len(source) != axes:  # type: ignore[arg-type]
        return FieldRule.UNKNOWN
    result = []
    for a, (step, spans) in enumerate(zip(steps, source)):  # type: ignore[arg-type]
        n = len(spans)
        result.append(tuple(_union(spans[i] for i in step.in_image(o) if 0 <= i < n)
                            for o in range(out[2 + a])))
    return tuple(result)


def _union(spans) -> Span:
    lo = hi = None
    for span in spans:
        if span is None:
            continue
        lo = span[0] if lo is None else min(lo, span[0])
        hi = span[1] if hi is None else max(hi, span[1])
    return None if lo is None else (lo, hi)


__all__ = ["ImageField", "fields_in_image"]
