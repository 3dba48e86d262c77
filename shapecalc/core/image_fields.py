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

from shapecalc.core.arithmetic.field_axes import (
    AxisMoves, Joined, Mixed, Read, Where, follow, trailing, where_of,
)
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
    # Where each value's fields sit (channels-last moves them): the theoretical field says.
    placing: dict[str, Where | None] = {name: trailing(shape) for name, shape in shapes.items()}
    nodes = {n.name: n for n in graph.nodes}
    for record in analysis.records:
        node = nodes[record.name]
        ins = record.input_shapes
        layer = record.layer or node.layer
        steps = layer.field_steps(*ins)
        sources = [found[i] for i in node.inputs]
        wheres = [placing.get(i) for i in node.inputs]
        found[record.name] = _through(sources, wheres, steps, ins, record.output_shape)
        rf = record.rf
        placing[record.name] = where_of(rf, record.output_shape) if isinstance(rf, tuple) else None
    return found


def _through(sources: list[ImageField], wheres: list, steps, ins, out) -> ImageField:
    if isinstance(steps, Mixed) and steps.attends and (
            any(s != sources[0] for s in sources[1:]) or any(w != wheres[0] for w in wheres[1:])):
        # keys and values read elsewhere than the query (see base._attended)
        return None if any(s is None for s in sources) else FieldRule.UNKNOWN
    if isinstance(steps, AxisMoves) and not isinstance(steps, Joined):
        sources, wheres = sources[:1], wheres[:1]  # the others only lend sizes (view(B, N, -1))
    if steps is FieldRule.GLOBAL or any(s is None for s in sources):
        return None
    if steps is FieldRule.UNKNOWN or any(s is FieldRule.UNKNOWN for s in sources):
        return FieldRule.UNKNOWN
    if isinstance(steps, Joined):
        steps = FieldRule.POINTWISE  # where the theoretical field is known, position-wise
    if isinstance(steps, AxisMoves):
        return _moved(sources[0], wheres[0], steps)
    if any(w is None or w != trailing(shape) for w, shape in zip(wheres, ins)):
        if steps is FieldRule.POINTWISE and None not in wheres and len(set(wheres)) == 1:
            return _merged(sources, [max(len(s[a]) for s in sources)  # type: ignore[index]
                                     for a in range(len(sources[0]))])  # type: ignore[arg-type]
        return FieldRule.UNKNOWN  # per-axis steps read the trailing axes, not these
    axes = len(out) - 2
    if steps is FieldRule.POINTWISE:
        spatial = [s for s in sources if len(s) == axes]  # type: ignore[arg-type]
        if not spatial:
            return FieldRule.UNKNOWN
        return _merged(spatial, list(out[2:]))
    (source,) = sources
    if len(steps) != len(source) or len(source) != axes:  # type: ignore[arg-type]
        return FieldRule.UNKNOWN
    result = []
    for a, (step, spans) in enumerate(zip(steps, source)):  # type: ignore[arg-type]
        n = len(spans)
        result.append(tuple(_union(spans[i] for i in step.in_image(o) if 0 <= i < n)
                            for o in range(out[2 + a])))
    return tuple(result)


def _merged(sources: list, sizes: list[int]) -> ImageField:
    """Position by position, what any input reads; a broadcast input (size 1 along the axis)
    reaches every output."""
    merged = []
    for a, size in enumerate(sizes):
        columns = [s[a] for s in sources]
        merged.append(tuple(_union(c[0] if len(c) == 1 else c[o] for c in columns)
                            for o in range(size)))
    return tuple(merged)


def _moved(source: ImageField, where, moves) -> ImageField:
    """Through a permute, reshape or whole-axis mix: each field's spans go with it (they are
    indexed by the field's own positions, wherever it sits); a field read whole gives every
    output the union of all of them."""
    followed = follow(where, moves) if where is not None else None
    if followed is None:
        return FieldRule.UNKNOWN
    if all(r is Read.WHOLE for r in followed.reads):
        return None
    result = []
    for spans, read, f in zip(source, followed.reads, followed.where):  # type: ignore[arg-type]
        if read is Read.WHOLE:
            result.append((_union(spans),) * f.size)
        else:
            result.append(spans)
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
