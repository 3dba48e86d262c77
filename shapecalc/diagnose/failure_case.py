"""A failure being explained, and the input sizes that would fix it.

:mod:`shapecalc.diagnose.diagnosis` says why a model does not fit; the :class:`FailureCase` it builds
holds the graph, every input's shape and the failing node, and checks each candidate fix
through the WHOLE model (:meth:`FailureCase.verified`). Input-size fixes are found here, with
a time-bounded search (:mod:`shapecalc.diagnose.size_search`); for a forward that takes several tensors
they resize only the inputs the failing node is computed from, and say which.
"""

from __future__ import annotations

import time
from typing import Any

from shapecalc.core.errors import LayerError
from shapecalc.diagnose.batch import BatchFold, fold_at, keeps_batch, shapes_until
from shapecalc.diagnose.fixes import Fix, FixKind, apply_fix
from shapecalc.core.graph import Graph, Node, analyze_graph, input_list
from shapecalc.diagnose.layer_repairs import ancestors
from shapecalc.core.layers import Shape, format_shape
from shapecalc.diagnose.size_search import SEARCH_SECONDS, SizeSearch

#: How far from the given size the input-size search looks (×, either way).
SEARCH_FACTOR = 4


def square(shape: Shape) -> bool:
    spatial = shape[2:]
    return len(spatial) >= 1 and all(s == spatial[0] for s in spatial)


def size_text(shape: Shape) -> str:
    """An input's spatial size (``224×224``); the whole shape for one without (``2×6``)."""
    return "×".join(str(s) for s in (shape[2:] or shape))


def resizable(graph: Graph, shapes: list[Shape], node: Node) -> list[tuple[int, ...]]:
    """The groups of inputs an input-size fix may resize, each group to one square size.

    The only input of a model, when square. With several inputs: those the failing node is
    computed from, with square spatial sizes; inputs of the same size move together (a
    siamese pair stays a pair), inputs without spatial sizes (token ids) never move.
    """
    if len(shapes) == 1:
        return [(0,)] if square(shapes[0]) else []
    upstream = ancestors(graph, node.name)
    groups: dict[Shape, list[int]] = {}
    for i, (name, shape) in enumerate(zip(graph.input_names, shapes)):
        if name in upstream and square(shape):
            groups.setdefault(tuple(shape[2:]), []).append(i)
    return [tuple(g) for g in groups.values()]


class FailureCase:
    """One failure being explained: the graph, the inputs, the failing node and what it received.

    Every fix is checked with :meth:`verified`: the WHOLE model must then fit the inputs, not
    just the node that failed, so a printed fix is never one that fails further down.
    ``groups`` are the inputs an input-size fix may change (see :func:`resizable`).
    """

    def __init__(self, graph: Graph, shapes: list[Shape], node: Node, inputs: list[Shape],
                 groups: list[tuple[int, ...]], diag: Any) -> None:
        self.graph, self.shapes, self.node, self.inputs, self.groups = graph, shapes, node, inputs, groups
        self.labels = diag.input_labels or tuple(f"input_{i}" for i in range(len(shapes)))
        self.at = (f"at input {size_text(shapes[0])}" if len(shapes) == 1
                   else f"at {diag.inputs_text()}")
        self._failing_at: int | None = None
        self.deadline = time.process_time() + SEARCH_SECONDS  # CPU time: same answer on a busy machine

    def fits(self, graph: Graph, shapes: Any = None) -> bool:
        """Whether ``graph`` fits ``shapes`` (default: the given inputs) and keeps the batch."""
        if shapes is None or shapes is self.shapes:
            cut = self._unchanged_prefix(graph)
            if cut:
                return self._fits_after(graph, cut)
        try:
            result = analyze_graph(graph, shapes or self.shapes)
        except LayerError:
            return False
        return not isinstance(keeps_batch(graph, shapes or self.shapes, result), BatchFold)

    def _unchanged_prefix(self, graph: Graph) -> int:
        """How many of ``graph``'s first nodes are this case's own nodes (the same objects) AND
        come before the failing node: the analysis that found the failure already checked them
        at these inputs, so a fix further on need not analyse them again (a ReLU × 199,998
        misfit is checked from its last node, not its first)."""
        if self._failing_at is None:
            self._failing_at = next(i for i, n in enumerate(self.graph.nodes) if n is self.node)
        cut = 0
        for old, new in zip(self.graph.nodes[:self._failing_at], graph.nodes):
            if old is not new:
                break
            cut += 1
        return cut

    def _fits_after(self, graph: Graph, cut: int) -> bool:
        """:meth:`fits` at the given inputs for a graph whose first ``cut`` nodes are checked:
        every shape by the shape rules alone, then the full analysis of the nodes from ``cut``
        on, fed the shapes their inputs have."""
        try:
            shapes = shapes_until(graph, self.shapes)
        except LayerError:
            return False
        rest = graph.nodes[cut:]
        made = {n.name for n in rest}
        feeds = list(dict.fromkeys(i for n in rest for i in n.inputs if i not in made))
        # the rest as a graph of its own, its inputs the values it reads from before the cut
        # (nodes that read nothing, such as constants, cannot be cut off: the whole graph then)
        tail, at = ((Graph(graph.name, rest, rest[-1].name, input_name=feeds[0],
                           extra_inputs=tuple(feeds[1:])), [shapes[name] for name in feeds])
                    if feeds else (graph, self.shapes))
        try:
            analyze_graph(tail, at)
        except LayerError:
            return False
        return not isinstance(fold_at(graph, input_list(self.shapes), shapes), BatchFold)

    def verified(self, fix: Fix) -> bool:
        """Whether the whole model fits once ``fix`` is applied."""
        try:
            graph, shapes = apply_fix(self.graph, self.shapes, fix)
        except (LayerError, TypeError, ValueError):  # an edit the layer itself refuses
            return False
        return self.fits(graph, shapes)

    def propose(self, diag: Any, fix: Fix) -> None:
        if self.verified(fix):
            diag.fixes.append(fix)

    def out_of_time(self) -> bool:
        return time.process_time() > self.deadline

    def which_text(self, which: tuple[int, ...]) -> str:
        """``input 2 ('image')`` or ``inputs 1 and 2 ('left', 'right')``: numbered as given."""
        numbers = [str(i + 1) for i in which]
        names = ", ".join(f"'{self.labels[i]}'" for i in which)
        if len(numbers) == 1:
            return f"input {numbers[0]} ({names})"
        return f"inputs {', '.join(numbers[:-1])} and {numbers[-1]} ({names})"


def node_ok_before(graph: Graph, input_shape: Any, node: Node) -> dict[str, Shape] | None:
    try:
        return shapes_until(graph, input_shape, node.name)
    except LayerError:
        return None


def input_fix(diag: Any, case: FailureCase, gives=None, measure=None) -> None:
    """For each group of inputs that may be resized (:func:`resizable`), the nearest square
    size for which the whole model fits, and the run of sizes around it.

    ``measure`` is ``(function of every input's shape, target)`` when the failing node needs
    one exact count (a Linear's features): then bisection finds the sizes that give it, or
    proves none does. Each search is bounded in time (:mod:`shapecalc.diagnose.size_search`) and says
    where it looked; with several inputs the fix names the inputs it resizes, and inputs that
    no common size fits are tried one at a time.
    """
    searched = []
    pending = list(case.groups)
    while pending:
        which = pending.pop(0)
        found = _size_fix(case, which, gives, measure)
        if isinstance(found, Fix):
            diag.fixes.append(found)
        else:
            if len(which) > 1:  # no common size: each input of the group alone, then
                pending[:0] = [(i,) for i in which]
            where = f" for {case.which_text(which)}" if len(case.shapes) > 1 else ""
            searched.append(found.replace(" here", where + " here") if found.endswith(" here")
                            else found + where)
    if searched and not any(f.kind is FixKind.INPUT for f in diag.fixes):
        diag.searched = "; ".join(searched)


def _size_fix(case: FailureCase, which: tuple[int, ...], gives, measure) -> Fix | str:
    """The input-size fix for the inputs ``which``, or what the search covered without one."""
    node = case.node
    search = SizeSearch(case.graph, case.shapes, which=which)
    n0 = search.template[2]
    limit = max(64, n0 * SEARCH_FACTOR)
    found = search.nearest(n0, limit)
    exact_run = None
    if found is None and measure is not None:
        count, target = measure
        exact_run = search.matching(n0, lambda n: count(search.at(n)), target)
        if exact_run is not None:
            first, last = exact_run
            found = next((n for n in sorted(range(first, min(last, first + limit) + 1),
                                            key=lambda n: abs(n - n0)) if search.fits(n)), None)
    if found is None and measure is None:
        found = search.grow(n0)
    if found is None:
        if measure is not None and exact_run is None and not search.stopped:
            return f"no square input size gives {measure[1]:,} features here"
        return f"no square input size fits the whole model: {search.searched}"
    run = search.run_around(found, 2 * limit)
    shapes = shapes_until(case.graph, search.at(found))
    detail = gives(shapes) if gives else format_shape(shapes[node.name])
    if run.open_ended:
        span = f"; any size from {run.low} up works"
    else:
        span = "" if run.low == run.high else f"; sizes {run.low} to {run.high} all work"
    size = size_text(search.at(found)[which[0]])
    if len(case.shapes) == 1:
        return Fix(f"use input {size} (gives {detail}{span})", FixKind.INPUT, size=found)
    return Fix(f"use {size} for {case.which_text(which)} (gives {detail}{span})", FixKind.INPUT,
               value=which, size=found)


__all__ = ["SEARCH_FACTOR", "FailureCase", "input_fix", "node_ok_before", "resizable", "shapes_until",
           "size_text", "square"]
