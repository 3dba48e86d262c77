"""Why a model does not fit its input, in the user's terms, and the smallest changes that fix it.

torch says ``mat1 and mat2 shapes cannot be multiplied (1x6400 and 9216x4096)``; this module
says ``Linear(9216, 4096) receives 6400 features (256×5×5) at input 224×224: set
in_features=6400, or use input 225×225 (gives 256×6×6 = 9216)``. Every suggested fix is
checked by re-running the engine with the change applied, so a fix is never a guess.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from math import prod
from typing import Any, Iterator

from .api import load_model
from .model_source import ModelSource
from .errors import ConfigError, LayerError, Reason, ShapeError
from .graph import Graph, Node, analyze_graph
from .input_scan import InputScan, compact, runs, scan_inputs
from .layers import LAYER_TYPES, Layer, Shape, format_shape
from .notes import NoteKind, has_kind
from .fixes import Fix, FixKind, apply_fix
from .size_search import SEARCH_SECONDS, SizeSearch
from .size_search import sized as _sized

#: How far from the given size the input-size search looks (×, either way).
SEARCH_FACTOR = 4


@dataclass
class Diagnosis:
    """The verdict for one input: fits, or the first failing node with its explanation and fixes."""

    model: str
    input_shape: Shape
    fits: bool
    output_shape: Shape | None = None
    node: str | None = None
    layer: str | None = None
    problem: str = ""
    expected: str = ""
    got: str = ""
    #: Verified fixes, smallest change first: each a ``str`` (its sentence) that also carries
    #: what to change (:class:`~shapecalc.fixes.Fix`: kind, node, field, value, size).
    fixes: list[Fix] = field(default_factory=list)
    dropping: list[str] = field(default_factory=list)
    #: When no input size is proposed: what the size search covered, or why none can work.
    searched: str = ""

    def summary(self) -> str:
        """One sentence: the problem and its fixes (the form quoted in the issue tracker)."""
        if self.fits:
            return f"{self.model} fits input {format_shape(self.input_shape)} → {format_shape(self.output_shape)}"
        if not self.fixes:
            return self.problem
        return f"{self.problem}: {', or '.join(self.fixes)}"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["summary"] = self.summary()
        out["fixes"] = [str(f) for f in self.fixes]
        out["fix_details"] = [f.details() for f in self.fixes]
        return out

    # Display (render/notebook.py, render/html_table.py): short repr, the verdict as text/HTML.
    def __repr__(self) -> str:
        from .render.notebook import diagnosis_repr

        return diagnosis_repr(self)

    def __str__(self) -> str:
        from .render.notebook import diagnosis_lines

        return "\n".join(diagnosis_lines(self))

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self) if cycle else str(self))

    def _repr_html_(self) -> str:
        from .render.html_table import diagnosis_html

        return diagnosis_html(self)

    def _repr_markdown_(self) -> str:
        from .render.notebook import diagnosis_markdown

        return diagnosis_markdown(self)


# ------------------------------------------------------------------ partial evaluation
def shapes_until(graph: Graph, input_shape: Shape, stop: str | None = None) -> dict[str, Shape]:
    """Output shapes of every node before ``stop`` (all nodes when ``None``); raises ShapeError."""
    shapes: dict[str, Shape] = {graph.input_name: tuple(input_shape)}
    for node in graph.nodes:
        if node.name == stop:
            return shapes
        try:
            shapes[node.name] = node.layer.output_shape(*(shapes[i] for i in node.inputs))
        except LayerError as err:
            raise err.located(node.name, node.layer.describe()) from None
    return shapes


def _ancestors(graph: Graph, name: str) -> set[str]:
    by_name = {n.name: n for n in graph.nodes}
    seen: set[str] = set()
    if name not in by_name:  # the graph input has no ancestors
        return seen
    stack = list(by_name[name].inputs)
    while stack:
        cur = stack.pop()
        if cur in seen or cur not in by_name:
            continue
        seen.add(cur)
        stack.extend(by_name[cur].inputs)
    return seen


def _square(shape: Shape) -> bool:
    spatial = shape[2:]
    return len(spatial) >= 1 and all(s == spatial[0] for s in spatial)


def _size_text(shape: Shape) -> str:
    return "×".join(str(s) for s in shape[2:])


_SEE_THROUGH = frozenset({"reshape", "dropout", "activation"})


def _feature_source(graph: Graph, name: str) -> str:
    """The node whose output a Linear's features came from, looking back through Flatten/Reshape
    and the shape-preserving layers (dropout, activations) that often sit in between."""
    cur = graph.node(name).inputs[0]
    while cur != graph.input_name:
        node = graph.node(cur)
        if node.layer.kind not in _SEE_THROUGH or len(node.inputs) != 1:
            break
        cur = node.inputs[0]
    return cur


def _per_sample(shape: Shape) -> str:
    return "×".join(map(str, shape[1:])) if len(shape) > 2 else str(shape[-1])


# ------------------------------------------------------------------ the diagnosis
def diagnose(model: Any, input_shape: Shape | None = None) -> Diagnosis:
    """Analyse ``model`` at ``input_shape``; when it breaks, say where, why and how to fix it."""
    src: ModelSource = load_model(model)
    shape = src.input_shape(input_shape)
    try:
        graph = src.graph_at(shape)
    except LayerError as err:  # an untraceable module refused the input while being recorded
        graph = err.partial_graph
        if graph is None:
            return Diagnosis(src.name, shape, False, node=err.node, layer=err.layer, problem=str(err))
    try:
        result = analyze_graph(graph, shape)
    except ConfigError as err:  # the layer's own arguments: no input size or neighbour can fix it
        return Diagnosis(src.name, shape, False, node=err.node, layer=err.layer,
                         problem=f"{err} (whatever the input)")
    except ShapeError as err:
        # A graph recorded at one size (untraceable forward) says nothing about other sizes.
        return _explain(src.name, graph, shape, err, scan_sizes=src.scannable)
    dropping = [r.name for r in result.records if has_kind(r.notes, NoteKind.DROPS)]
    return Diagnosis(src.name, shape, True, result.output_shape, dropping=dropping)


def _explain(model: str, graph: Graph, shape: Shape, err: ShapeError, scan_sizes: bool = True) -> Diagnosis:
    """Dispatch on ``err.reason``: each kind of refusal has its own explanation and fixes."""
    name = err.node or ""
    try:
        node = graph.node(name)
    except KeyError:
        return Diagnosis(model, shape, False, node=name, layer=err.layer, problem=str(err))
    ins = shapes_until(graph, shape, name)
    case = _Case(graph, shape, node, [ins[i] for i in node.inputs], scan_sizes and _square(shape))
    diag = Diagnosis(model, shape, False, node=name, layer=node.layer.describe())
    numbers, inputs, at = err.numbers, case.inputs, case.at
    if err.reason is Reason.FEATURES:
        _linear(diag, case, numbers)
    elif err.reason is Reason.CHANNELS:
        _channels(diag, case, numbers)
    elif err.reason is Reason.MERGE:
        _merge(diag, case)
    elif err.reason is Reason.ELEMENTS:
        per = prod(inputs[0][1:])
        diag.expected = f"{numbers['known']} elements"
        diag.got = f"{numbers['elements']} elements ({format_shape(inputs[0])})"
        diag.problem = (f"{node.layer.describe()} at '{name}' receives {format_shape(inputs[0])} "
                        f"({per} per sample) {at}")
        case.propose(diag, Fix(f"view it as (N, -1) or (N, {per})", FixKind.SET, name, "shape", (0, -1)))
        _input_fix(diag, case)
    else:
        diag.problem = f"'{name}' {node.layer.describe()} cannot take {format_shape(inputs[0]) if inputs else '?'} {at}: {err.message}"
        diag.expected, diag.got = err.message, " and ".join(format_shape(s) for s in inputs)
        _local_repairs(diag, case)
        _input_fix(diag, case)
    return diag


class _Case:
    """One failure being explained: the graph, the input, the failing node and what it received.

    Every fix is checked with :meth:`verified`: the WHOLE model must then fit the input, not
    just the node that failed, so a printed fix is never one that fails further down.
    """

    def __init__(self, graph: Graph, shape: Shape, node: Node, inputs: list[Shape], scan: bool) -> None:
        self.graph, self.shape, self.node, self.inputs, self.scan = graph, shape, node, inputs, scan
        self.at = f"at input {_size_text(shape)}"
        self.deadline = time.monotonic() + SEARCH_SECONDS

    def fits(self, graph: Graph, shape: Shape | None = None) -> bool:
        try:
            analyze_graph(graph, shape or self.shape)
            return True
        except LayerError:
            return False

    def verified(self, fix: Fix) -> bool:
        """Whether the whole model fits once ``fix`` is applied."""
        try:
            graph, shape = apply_fix(self.graph, self.shape, fix)
        except (LayerError, TypeError, ValueError):  # an edit the layer itself refuses
            return False
        return self.fits(graph, shape)

    def propose(self, diag: Diagnosis, fix: Fix) -> None:
        if self.verified(fix):
            diag.fixes.append(fix)

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


def _linear(diag: Diagnosis, case: _Case, numbers: dict) -> None:
    graph, node, shape = case.graph, case.node, case.shape
    layer = node.layer
    features, expected = numbers["features"], numbers["in_features"]
    src = _feature_source(graph, node.name)
    pre = shapes_until(graph, shape, node.name)[src]
    shown = f"{features} features ({_per_sample(pre)})" if len(pre) > 2 else f"{features} features"
    diag.problem = f"Linear({expected}, {layer.out_features}) receives {shown} {case.at}"
    diag.expected, diag.got = f"{expected} input features", shown
    case.propose(diag, Fix(f"set in_features={features}", FixKind.SET, node.name, "in_features", features))

    def gives(shapes: dict[str, Shape]) -> str:
        p = shapes[src]
        return f"{_per_sample(p)} = {expected}" if len(p) > 2 else str(expected)

    def features_at(n: int) -> int | None:
        shapes = _node_ok_before(graph, _sized(shape, n), node)
        return None if shapes is None else shapes[node.inputs[0]][-1]

    _input_fix(diag, case, gives, (features_at, expected))


def _channels(diag: Diagnosis, case: _Case, numbers: dict) -> None:
    graph, node, inputs = case.graph, case.node, case.inputs
    got, expected = numbers["channels"], numbers["expected_channels"]
    producer = node.inputs[0]
    field_name = "num_features" if hasattr(node.layer, "num_features") else "in_channels"
    diag.problem = (f"{node.layer.describe()} at '{node.name}' expects {expected} input channels "
                    f"but receives {got} ({format_shape(inputs[0])} from '{producer}') {case.at}")
    diag.expected, diag.got = f"{expected} channels", f"{got} channels"
    case.propose(diag, Fix(f"set {field_name}={got}", FixKind.SET, node.name, field_name, got))
    # The upstream layer that decides the channel count: the nearest one with out_channels.
    cur = producer
    while cur != graph.input_name:
        up = graph.node(cur)
        if hasattr(up.layer, "out_channels"):
            case.propose(diag, Fix(f"set out_channels={expected} on '{cur}' ({up.layer.describe()})",
                                   FixKind.SET, cur, "out_channels", expected))
            break
        if len(up.inputs) != 1:
            break
        cur = up.inputs[0]


def _merge(diag: Diagnosis, case: _Case) -> None:
    graph, node, inputs = case.graph, case.node, case.inputs
    what = "concatenation" if node.layer.type_name == "Concat" else "residual add"
    parts = [f"{format_shape(s)} from '{i}'" for i, s in zip(node.inputs, inputs)]
    diag.problem = f"the {what} '{node.name}' gets {' and '.join(parts)} {case.at}"
    diag.expected = "matching shapes" if what == "residual add" else "equal sizes except along the concat dim"
    diag.got = " and ".join(format_shape(s) for s in inputs)
    fixes: list[tuple[int, Fix]] = []
    branches = [_ancestors(graph, i) | {i} for i in node.inputs]
    common = set.intersection(*branches) if branches else set()
    for b, branch in enumerate(branches):
        exclusive = [n for n in graph.nodes if n.name in branch and n.name not in common]
        for cand in exclusive:
            for variant in _variants(cand.layer, inputs[1 - b] if len(inputs) == 2 else None):
                if case.out_of_time():
                    break
                fix = Fix(f"set {variant} on '{cand.name}' ({cand.layer.describe()})", FixKind.SET,
                          cand.name, variant.arg, variant.value)
                if case.verified(fix):
                    fixes.append((variant.cost, fix))
        if not exclusive and len(inputs) == 2 and len(inputs[b]) >= 3:  # an identity shortcut
            fixes.extend(_shortcut_fix(case, b))
    fixes.sort(key=lambda f: f[0])
    seen: list[Fix] = []
    for _, fix in fixes:
        if fix not in seen:
            seen.append(fix)
    diag.fixes.extend(seen[:3])


def _shortcut_fix(case: _Case, b: int) -> list[tuple[int, Fix]]:
    """A 1×1 projection on the identity input ``b`` of a two-input merge, verified by inserting
    it into the graph and analysing the whole model."""
    side, main, name = case.inputs[b], case.inputs[1 - b], case.node.inputs[b]
    spatial_side, spatial_main = side[2:], main[2:]
    if len(spatial_side) != len(spatial_main) or not all(m and s % m == 0 for s, m in zip(spatial_side, spatial_main)):
        return []
    ratios = {s // m for s, m in zip(spatial_side, spatial_main)}
    if len(ratios) != 1:
        return []
    stride = ratios.pop()
    conv = f"Conv{len(spatial_side)}d"
    projection = LAYER_TYPES[conv](side[1], main[1], 1, stride=stride)
    stride_text = f", stride={stride}" if stride != 1 else ""
    fix = Fix(f"give the shortcut a {conv}({side[1]}, {main[1]}, kernel_size=1{stride_text}) "
              f"instead of the identity ('{name}' passes {format_shape(side)})",
              FixKind.PROJECTION, case.node.name, value=b, layer=projection)
    return [(5, fix)] if case.verified(fix) else []


@dataclass(frozen=True)
class _Variant:
    """One single-argument edit of a layer: ``arg=value`` at ``cost`` (smaller is closer)."""

    cost: int
    arg: str
    value: int

    def __str__(self) -> str:
        return f"{self.arg}={self.value}"


#: Most paddings tried per layer: an edit far from the layer's own padding is no small fix,
#: and a kernel of 10,000,000 must not mean 10,000,000 trials.
MAX_PADDING_TRIES = 32


def _variants(layer: Layer, other: Shape | None) -> Iterator[_Variant]:
    """Single-argument edits of a conv/pool layer, cheapest first."""
    fields = {f.name for f in dataclasses.fields(layer) if f.init} if dataclasses.is_dataclass(layer) else set()
    if "stride" in fields and getattr(layer, "stride", None) is not None:
        current = getattr(layer, "_s", (1,))[0]
        for s in range(1, 5):
            if s != current:
                yield _Variant(abs(s - current), "stride", s)
    if "padding" in fields and not isinstance(getattr(layer, "padding", 0), str):
        current = getattr(layer, "_pl", (0,))[0]
        k = getattr(layer, "_k", (3,))[0]
        for p in range(0, min(k, MAX_PADDING_TRIES) + 1):
            if p != current:
                yield _Variant(abs(p - current), "padding", p)
    if "out_channels" in fields and other is not None and len(other) >= 2:
        yield _Variant(1, "out_channels", other[1])


def _local_repairs(diag: Diagnosis, case: _Case) -> None:
    """Edits of the failing layer itself (padding, stride) that make the whole model fit."""
    best: dict[str, tuple[int, Fix]] = {}  # one fix per argument: the smallest change
    for variant in _variants(case.node.layer, None):
        if variant.arg == "out_channels" or case.out_of_time():
            continue
        if variant.arg in best and variant.cost >= best[variant.arg][0]:
            continue
        fix = Fix(f"set {variant}", FixKind.SET, case.node.name, variant.arg, variant.value)
        if case.verified(fix):
            best[variant.arg] = (variant.cost, fix)
    diag.fixes.extend(fix for _, fix in sorted(best.values(), key=lambda v: v[0]))


def _node_ok_before(graph: Graph, input_shape: Shape, node: Node) -> dict[str, Shape] | None:
    try:
        return shapes_until(graph, input_shape, node.name)
    except LayerError:
        return None


def _input_fix(diag: Diagnosis, case: _Case, gives=None, measure=None) -> None:
    """The nearest square input for which the whole model fits, and the run of sizes around it.

    ``measure`` is ``(function of the size, target)`` when the failing node needs one exact
    count (a Linear's features): then bisection finds the sizes that give it, or proves none
    does. The search is bounded in time (:mod:`shapecalc.size_search`) and says where it looked.
    """
    if not case.scan:
        return
    shape, node = case.shape, case.node
    n0 = shape[2]
    search = SizeSearch(case.graph, shape)
    limit = max(64, n0 * SEARCH_FACTOR)
    found = search.nearest(n0, limit)
    exact_run = None
    if found is None and measure is not None:
        exact_run = search.matching(n0, *measure)
        if exact_run is not None:
            first, last = exact_run
            found = next((n for n in sorted(range(first, min(last, first + limit) + 1),
                                            key=lambda n: abs(n - n0)) if search.fits(n)), None)
    if found is None and measure is None:
        found = search.grow(n0)
    if found is None:
        if measure is not None and exact_run is None and not search.stopped:
            diag.searched = f"no square input size gives {measure[1]} features here"
        else:
            diag.searched = f"no square input size fits the whole model: {search.searched}"
        return
    run = search.run_around(found, 2 * limit)
    shapes = shapes_until(case.graph, _sized(shape, found))
    detail = gives(shapes) if gives else format_shape(shapes[node.name])
    if run.open_ended:
        span = f"; any size from {run.low} up works"
    else:
        span = "" if run.low == run.high else f"; sizes {run.low} to {run.high} all work"
    diag.fixes.append(Fix(f"use input {_size_text(_sized(shape, found))} (gives {detail}{span})",
                          FixKind.INPUT, size=found))


__all__ = ["Diagnosis", "Fix", "FixKind", "InputScan", "compact", "diagnose", "runs", "scan_inputs", "shapes_until"]
