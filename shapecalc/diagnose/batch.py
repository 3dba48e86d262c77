"""Whether a model keeps the batch: one sample in gives one sample out.

``x.view(-1, 400)`` fits many input sizes, but at most of them it folds part of each image into
the batch: at 64×64 one image comes out as 36 rows. The sizes "fit", yet every number after it
describes another model. So a verdict (and every proposed fix) is checked at a second batch
size: the batch must be one axis of each output that follows the input's batch, every other
axis unchanged. The operation that first loses it, on the way to an output that does not keep
it, is the one to name (an attention that folds heads into the batch and unfolds them again
keeps the batch at its output and is not reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from shapecalc.core.analysis import Analysis
from shapecalc.core.errors import LayerError
from shapecalc.core.graph import Graph, analyze_graph, input_list
from shapecalc.core.layers import Reshape, Shape, format_shape


@dataclass(frozen=True)
class BatchFold:
    """The operation at which the batch is lost, with the shapes that show it at the given
    input. ``where`` is the source line of a traced Python model (``net.py:14``), when known."""

    node: str
    layer: str
    before: Shape
    after: Shape
    output: Shape
    batch: int
    where: str | None = None

    def problem(self) -> str:
        """``Reshape(-1, 400) at 'view' (net.py:14) folds the batch: 1×16×30×30 becomes 36×400,
        so 1 sample in gives 36×10 out``."""
        at = f"'{self.node}'" + (f" ({self.where})" if self.where else "")
        samples = "1 sample" if self.batch == 1 else f"a batch of {self.batch}"
        return (f"{self.layer} at {at} does not keep the batch: {format_shape(self.before)} becomes "
                f"{format_shape(self.after)}, so {samples} in gives {format_shape(self.output)} out")

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "layer": self.layer, "where": self.where,
                "before": list(self.before), "after": list(self.after),
                "output": list(self.output), "batch": self.batch}


def next_batch(shapes: Sequence[Shape]) -> list[Shape] | None:
    """Every input with its batch (dim 0) one larger; ``None`` when the inputs do not share
    one batch size (nothing to compare against)."""
    if not shapes or any(len(s) < 2 for s in shapes) or len({s[0] for s in shapes}) != 1:
        return None
    return [(s[0] + 1,) + tuple(s[1:]) for s in shapes]


def _follows(first: Shape, second: Shape, n: int) -> bool:
    """Whether ``first`` (at batch ``n``) and ``second`` (at ``n + 1``) differ in exactly one
    axis, the batch's."""
    if len(first) != len(second):
        return False
    moved = [i for i, (a, b) in enumerate(zip(first, second)) if a != b]
    return len(moved) == 1 and first[moved[0]] == n and second[moved[0]] == n + 1


def batch_fold(first: Analysis, second: Analysis, batch: int) -> BatchFold | None:
    """The fold between the analyses of one graph at batch ``batch`` and ``batch + 1``, or
    ``None`` when every output keeps the batch (or does not depend on it at all)."""
    return _fold(first.graph, _shapes_of(first), _shapes_of(second), batch)


def _shapes_of(result: Analysis) -> dict[str, Shape]:
    """Every node's and input's output shape in ``result``."""
    shapes = {r.name: r.output_shape for r in result.records}
    shapes.update(zip(result.graph.input_names, result.input_shapes or (result.input_shape,)))
    return shapes


def _fold(graph: Graph, at_first: dict[str, Shape], at_second: dict[str, Shape],
          batch: int) -> BatchFold | None:
    def lost(name: str) -> bool:  # depends on the batch, but no axis follows it
        a, b = at_first.get(name), at_second.get(name)
        return a is not None and b is not None and a != b and not _follows(a, b, batch)

    outputs = [node for _, node in graph.outputs] or [graph.output]
    bad = next((o for o in outputs if lost(o)), None)
    if bad is None:
        return None
    inputs = {n.name: n.inputs for n in graph.nodes}
    # Back from the output along values that lost the batch, to the first that received it.
    seen, stack = set(), [bad]
    while stack:
        name = stack.pop()
        if name in seen or name not in inputs:
            continue
        seen.add(name)
        sources = inputs[name]
        if any(not lost(s) and at_first.get(s) != at_second.get(s) for s in sources):
            node = graph.node(name)
            before = at_first[sources[0]]
            return BatchFold(name, node.layer.describe(), before, at_first[name], at_first[bad], batch)
        stack.extend(s for s in sources if lost(s))
    return None


def keeps_batch(graph: Graph, shapes: Any, first: Analysis | None = None) -> BatchFold | None | bool:
    """For a graph that fits ``shapes``: the :class:`BatchFold` if it does not keep the batch,
    else ``None``. ``False`` when the graph fails at the next batch size although it fits this
    one (a batch size written into the model) — also no proof that it keeps the batch."""
    shapes = input_list(shapes)
    if next_batch(shapes) is None:
        return None
    try:
        first = first or analyze_graph(graph, shapes if len(shapes) > 1 else shapes[0])
    except LayerError:
        return False
    return fold_at(graph, shapes, _shapes_of(first))


def fold_at(graph: Graph, shapes: list[Shape], at_first: dict[str, Shape]) -> BatchFold | None | bool:
    """:func:`keeps_batch` for a graph whose every shape at ``shapes`` is known (``at_first``,
    inputs included). The second batch is worked out as shapes alone: the fold is read from
    them, and a full analysis (fields, MACs, notes) would cost a whole pass more on every
    verified fix."""
    more = next_batch(shapes)
    if more is None:
        return None
    try:
        second = shapes_until(graph, more)
    except LayerError:
        return False
    return _fold(graph, at_first, second, shapes[0][0])


def shapes_until(graph: Graph, input_shape: Any, stop: str | None = None) -> dict[str, Shape]:
    """Output shapes of every node before ``stop`` (all nodes when ``None``); raises ShapeError.

    ``input_shape`` is the input's shape, or every input's (``graph.input_names``) as a list.
    """
    shapes: dict[str, Shape] = dict(zip(graph.input_names, input_list(input_shape)))
    for node in graph.nodes:
        if node.name == stop:
            return shapes
        try:
            shapes[node.name] = node.layer.output_shape(*(shapes[i] for i in node.inputs))
        except LayerError as err:
            raise err.located(node.name, node.layer.describe()) from None
    return shapes


def batch_keeping_layer(layer: Any) -> Reshape | None:
    """``view(-1, K)`` as the batch-keeping ``flatten(1)`` (``Reshape(N, -1)``); ``None`` for
    any other operation (its batch-keeping form is the user's to choose)."""
    if isinstance(layer, Reshape) and len(layer.shape) == 2 and layer.shape[0] == -1:
        return Reshape((0, -1))
    return None


__all__ = ["BatchFold", "batch_fold", "batch_keeping_layer", "fold_at", "keeps_batch", "next_batch", "shapes_until"]
