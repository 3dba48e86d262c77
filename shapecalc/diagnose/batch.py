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

from dataclasses import dataclass, replace
from typing import Any, Sequence

from shapecalc.core.analysis import Analysis
from shapecalc.core.errors import LayerError
from shapecalc.core.graph import Graph, analyze_graph, input_list
from shapecalc.core.inputs import Inputs
from shapecalc.core.layers import Shape
from shapecalc.core.layers.functional import Permute, Reshape, Transpose
from shapecalc.core.notes import Note, NoteKind
from shapecalc.models.api import analyze
from shapecalc.models.model_source import ModelSource

#: The batch-keeping code for a reshape to (N, features): what ``view(-1, K)`` meant.
FLATTEN_FIX = "x.flatten(1) (or x.view(x.size(0), -1))"

#: Recorded torch functions (hook imports) that are a reshape to the given sizes.
_RESHAPE_OPS = frozenset({"view", "reshape", "flatten"})


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
    #: The batch-keeping code to write instead (:data:`FLATTEN_FIX`), when the operation is a
    #: reshape to (samples, features); ``None`` when the right form is the user's to choose.
    fix: str | None = None

    def problem(self) -> str:
        """``Reshape(-1, 400) at 'view' (net.py:14) does not keep the batch: 1×16×30×30
        becomes 36×400, so 1 sample in gives 36×10 out``."""
        return str(replace(self, fix=None).note())

    def note(self) -> Note:
        """The model-wide note ``show`` and the report print: the problem and the code fix."""
        return Note.of(NoteKind.BATCH_FOLD, node=self.node, layer=self.layer, where=self.where,
                       before=tuple(self.before), after=tuple(self.after),
                       output=tuple(self.output), batch=self.batch, fix=self.fix)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "layer": self.layer, "where": self.where,
                "before": list(self.before), "after": list(self.after),
                "output": list(self.output), "batch": self.batch, "fix": self.fix}


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
            before, after = at_first[sources[0]], at_first[name]
            return BatchFold(name, node.layer.describe(), before, after, at_first[bad], batch,
                             fix=FLATTEN_FIX if _to_features(node.layer, after) else None)
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


def _to_features(layer: Any, out: Shape) -> bool:
    """Whether ``layer`` reshapes to (rows, features), which ``flatten(1)`` writes batch-keeping."""
    if isinstance(layer, Reshape):
        return batch_keeping_layer(layer) is not None
    return getattr(layer, "op_type", None) in _RESHAPE_OPS and len(out) == 2


def may_fold(result: Analysis) -> bool:
    """Whether any operation on the way from the inputs could lose the batch, read from this
    one analysis by following the axis that holds it: a permute moves it, an op that keeps its
    size where it was (or drops or adds leading axes around it) carries it, and anything else
    (``view(-1, 400)`` making 36 rows of one image, a mean over the batch, a reshape whose
    first size is written into the model as ``view(1, -1)``) may lose it. Only then is a
    second analysis needed; a zoo CNN or a timm ViT pays one pass over its nodes.

    A recorded model's (hook import) ``view(1, -1)`` keeps its axis 0 at batch 1 and is not
    seen: its sizes are recorded as numbers, whatever the code wrote (``check`` at batch 2
    sees it).
    """
    graph = result.graph
    inputs = result.input_shapes or (result.input_shape,)
    if graph is None or next_batch(inputs) is None:
        return False
    shapes: dict[str, Shape] = {r.name: r.output_shape for r in result.records}
    shapes.update(zip(graph.input_names, inputs))
    axis: dict[str, int] = dict.fromkeys(graph.input_names, 0)  # values that hold the batch
    for node in graph.nodes:
        source = next((s for s in node.inputs if s in axis), None)
        if source is None:  # weights and constants: no batch to lose
            continue
        moved = _batch_axis(node.layer, axis[source], shapes.get(source), shapes.get(node.name))
        if moved is None:
            return True
        axis[node.name] = moved
    return False


def _batch_axis(layer: Any, at: int, before: Shape | None, after: Shape | None) -> int | None:
    """Where the batch (axis ``at`` of ``before``) is in ``after``; ``None``: perhaps lost."""
    if before is None or after is None:
        return None
    if isinstance(layer, Permute):
        return [d % len(before) for d in layer.dims].index(at)
    if isinstance(layer, Transpose):
        pair = (layer.dim0 % len(before), layer.dim1 % len(before))
        return pair[1] if at == pair[0] else pair[0] if at == pair[1] else at
    if isinstance(layer, Reshape):
        # Only (N, …) and (-1, …) that leave axis 0 at its size keep it: with every other size
        # fixed, -1 is N exactly when the per-sample count matches (view(-1, 400) at 14×14).
        keeps = at == 0 and layer.shape[:1] in ((0,), (-1,)) and after[:1] == before[:1]
        return 0 if keeps else None
    if len(after) == len(before):
        return at if after[at] == before[at] else None
    shift = len(after) - len(before)  # axes dropped or added in front of it (x[0], unbind(0))
    if 0 <= at + shift < len(after) and tuple(after[at + shift:]) == tuple(before[at:]):
        return at + shift
    if at == 0 and after[:1] == before[:1]:
        # flatten(1), a mean over the features, and a measured reshape: fx measures a reshape
        # whose sizes come from the tensor (x.view(x.size(0), 768, -1)) and writes literal
        # sizes as a Reshape layer, checked above.
        return 0
    return None


def find_fold(src: ModelSource, inputs: Inputs, result: Analysis) -> BatchFold | None:
    """The batch fold of a model that fits ``inputs`` (``result``), found by analysing it at
    the next batch size too (a recorded model is recorded again there) when :func:`may_fold`
    says one is possible, with the line of the forward that made it."""
    if not may_fold(result):
        return None
    more = next_batch(inputs.shapes)
    if more is None:
        return None
    try:
        second = analyze(src, inputs.with_shapes(more), result.dtype, mode=result.mode or "eval")
    except LayerError:  # a batch size written into the model: no proof either way
        return None
    fold = batch_fold(result, second, inputs.shapes[0][0])
    if fold is not None:
        fold = replace(fold, where=line_of(src, fold.node))
    return fold


def line_of(src: ModelSource, node: str) -> str | None:
    """``net.py:14``: the line of the forward that made ``node`` (traced Python models only)."""
    if src.torch_import is None:
        return None
    from shapecalc.torch_bridge.fx_import import source_line

    return source_line(src.torch_import, node)


def batch_keeping_layer(layer: Any) -> Reshape | None:
    """``view(-1, K)`` as the batch-keeping ``flatten(1)`` (``Reshape(N, -1)``); ``None`` for
    any other operation (its batch-keeping form is the user's to choose)."""
    if isinstance(layer, Reshape) and len(layer.shape) == 2 and layer.shape[0] == -1:
        return Reshape((0, -1))
    return None


__all__ = ["FLATTEN_FIX", "BatchFold", "batch_fold", "batch_keeping_layer", "find_fold", "fold_at",
           "keeps_batch", "line_of", "may_fold", "next_batch", "shapes_until"]
