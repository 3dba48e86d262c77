"""Why a model does not fit its input, in the user's terms, and the smallest changes that fix it.

torch says ``mat1 and mat2 shapes cannot be multiplied (1x6400 and 9216x4096)``; this module
says ``Linear(9216, 4096) receives 6400 features (256×5×5) at input 224×224: set
in_features=6400, or use input 225×225 (gives 256×6×6 = 9216)``. Every suggested fix is
checked by re-running the engine with the change applied, so a fix is never a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from math import prod
from typing import Any

from .api import load_model
from .model_source import ModelSource
from .errors import ShapeError, SpecError
from .graph import Graph, Node, analyze_graph
from .input_scan import InputScan, compact, runs, scan_inputs
from .layers import Layer, Shape, format_shape
from .notes import NoteKind, has_kind

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
    fixes: list[str] = field(default_factory=list)
    dropping: list[str] = field(default_factory=list)

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
        return out


# ------------------------------------------------------------------ partial evaluation
def shapes_until(graph: Graph, input_shape: Shape, stop: str | None = None) -> dict[str, Shape]:
    """Output shapes of every node before ``stop`` (all nodes when ``None``); raises ShapeError."""
    shapes: dict[str, Shape] = {graph.input_name: tuple(input_shape)}
    for node in graph.nodes:
        if node.name == stop:
            return shapes
        try:
            shapes[node.name] = node.layer.output_shape(*(shapes[i] for i in node.inputs))
        except ShapeError as err:
            raise err.located(node.name, node.layer.describe()) from None
    return shapes


def _node_ok(graph: Graph, input_shape: Shape, name: str) -> dict[str, Shape] | None:
    """Shapes through ``name`` inclusive, or None if anything up to it fails."""
    try:
        shapes = shapes_until(graph, input_shape, name)
        node = graph.node(name)
        shapes[name] = node.layer.output_shape(*(shapes[i] for i in node.inputs))
        return shapes
    except ShapeError:
        return None


def _with_layer(graph: Graph, name: str, layer: Layer) -> Graph:
    nodes = [dataclasses.replace(n, layer=layer) if n.name == name else n for n in graph.nodes]
    return Graph(graph.name, nodes, graph.output, graph.blocks, graph.input_name)


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


def _sized(template: Shape, n: int) -> Shape:
    return tuple(template[:2]) + (n,) * (len(template) - 2)


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
    shape = tuple(input_shape) if input_shape is not None else src.default_input
    if shape is None:
        raise SpecError(f"{src.name} has no default input shape; give one")
    try:
        graph = src.graph_for(shape) if src.graph_for is not None else src.graph
    except ShapeError as err:  # an untraceable module refused the input while being recorded
        graph = getattr(err, "partial_graph", None)
        if graph is None:
            return Diagnosis(src.name, shape, False, node=err.node, layer=err.layer, problem=str(err))
    try:
        result = analyze_graph(graph, shape)
    except ShapeError as err:
        # A graph recorded at one size (untraceable forward) says nothing about other sizes.
        return _explain(src.name, graph, shape, err, scan_sizes=src.graph_for is None)
    dropping = [r.name for r in result.records if has_kind(r.notes, NoteKind.DROPS)]
    return Diagnosis(src.name, shape, True, result.output_shape, dropping=dropping)


def _explain(model: str, graph: Graph, shape: Shape, err: ShapeError, scan_sizes: bool = True) -> Diagnosis:
    name = err.node or ""
    try:
        node = graph.node(name)
    except KeyError:
        return Diagnosis(model, shape, False, node=name, layer=err.layer, problem=str(err))
    if not scan_sizes:
        graph = Graph(graph.name, graph.nodes, graph.output, graph.blocks, graph.input_name)
        graph.scan_sizes = False  # type: ignore[attr-defined]
    ins = shapes_until(graph, shape, name)
    inputs = [ins[i] for i in node.inputs]
    diag = Diagnosis(model, shape, False, node=name, layer=node.layer.describe())
    numbers = err.numbers
    at = f"at input {_size_text(shape)}"
    if "in_features" in numbers:
        _linear(diag, graph, node, inputs, numbers, at, shape)
    elif "expected_channels" in numbers:
        _channels(diag, graph, node, inputs, numbers, at, shape)
    elif node.layer.type_name in ("Add", "Mul", "Concat"):
        _merge(diag, graph, node, inputs, shape, at)
    elif node.layer.type_name == "Reshape" and "elements" in numbers:
        per = prod(inputs[0][1:])
        diag.expected = f"{numbers['known']} elements"
        diag.got = f"{numbers['elements']} elements ({format_shape(inputs[0])})"
        diag.problem = (f"{node.layer.describe()} at '{name}' receives {format_shape(inputs[0])} "
                        f"({per} per sample) {at}")
        diag.fixes.append(f"view it as (N, -1) or (N, {per})")
        _input_fix(diag, graph, node, shape)
    else:
        diag.problem = f"'{name}' {node.layer.describe()} cannot take {format_shape(inputs[0]) if inputs else '?'} {at}: {err.message}"
        diag.expected, diag.got = err.message, " and ".join(format_shape(s) for s in inputs)
        _local_repairs(diag, graph, node, shape)
        _input_fix(diag, graph, node, shape)
    return diag


def _linear(diag: Diagnosis, graph: Graph, node: Node, inputs: list[Shape], numbers: dict,
            at: str, shape: Shape) -> None:
    layer = node.layer
    features, expected = numbers["features"], numbers["in_features"]
    src = _feature_source(graph, node.name)
    pre = shapes_until(graph, shape, node.name)[src]
    shown = f"{features} features ({_per_sample(pre)})" if len(pre) > 2 else f"{features} features"
    diag.problem = f"Linear({expected}, {layer.out_features}) receives {shown} {at}"
    diag.expected, diag.got = f"{expected} input features", shown
    diag.fixes.append(f"set in_features={features}")

    def gives(shapes: dict[str, Shape]) -> str:
        p = shapes[src]
        return f"{_per_sample(p)} = {expected}" if len(p) > 2 else str(expected)

    _input_fix(diag, graph, node, shape, gives)


def _channels(diag: Diagnosis, graph: Graph, node: Node, inputs: list[Shape], numbers: dict,
              at: str, shape: Shape) -> None:
    got, expected = numbers["channels"], numbers["expected_channels"]
    producer = node.inputs[0]
    field_name = "num_features" if hasattr(node.layer, "num_features") else "in_channels"
    diag.problem = (f"{node.layer.describe()} at '{node.name}' expects {expected} input channels "
                    f"but receives {got} ({format_shape(inputs[0])} from '{producer}') {at}")
    diag.expected, diag.got = f"{expected} channels", f"{got} channels"
    diag.fixes.append(f"set {field_name}={got}")
    # The upstream layer that decides the channel count: the nearest one with out_channels.
    cur = producer
    while cur != graph.input_name:
        up = graph.node(cur)
        if hasattr(up.layer, "out_channels"):
            trial = _with_layer(graph, cur, _replace(up.layer, out_channels=expected))
            if _node_ok(trial, shape, node.name) is not None:  # only fixes that really fix it
                diag.fixes.append(f"set out_channels={expected} on '{cur}' ({up.layer.describe()})")
            break
        if len(up.inputs) != 1:
            break
        cur = up.inputs[0]


def _merge(diag: Diagnosis, graph: Graph, node: Node, inputs: list[Shape], shape: Shape, at: str) -> None:
    what = "concatenation" if node.layer.type_name == "Concat" else "residual add"
    parts = [f"{format_shape(s)} from '{i}'" for i, s in zip(node.inputs, inputs)]
    diag.problem = f"the {what} '{node.name}' gets {' and '.join(parts)} {at}"
    diag.expected = "matching shapes" if what == "residual add" else "equal sizes except along the concat dim"
    diag.got = " and ".join(format_shape(s) for s in inputs)
    fixes: list[tuple[int, str]] = []
    branches = [_ancestors(graph, i) | {i} for i in node.inputs]
    common = set.intersection(*branches) if branches else set()
    for b, branch in enumerate(branches):
        exclusive = [n for n in graph.nodes if n.name in branch and n.name not in common]
        for cand in exclusive:
            for cost, layer, text in _variants(cand.layer, inputs[1 - b] if len(inputs) == 2 else None):
                trial = _with_layer(graph, cand.name, layer)
                if _node_ok(trial, shape, node.name) is not None:
                    fixes.append((cost, f"set {text} on '{cand.name}' ({cand.layer.describe()})"))
        if not exclusive and len(inputs) == 2 and len(inputs[b]) >= 3:  # an identity shortcut
            fixes.extend(_shortcut_fix(inputs[b], inputs[1 - b], node.inputs[b]))
    fixes.sort(key=lambda f: f[0])
    seen: list[str] = []
    for _, text in fixes:
        if text not in seen:
            seen.append(text)
    diag.fixes.extend(seen[:3])


def _shortcut_fix(side: Shape, main: Shape, name: str) -> list[tuple[int, str]]:
    spatial_side, spatial_main = side[2:], main[2:]
    if len(spatial_side) != len(spatial_main) or not all(m and s % m == 0 for s, m in zip(spatial_side, spatial_main)):
        return []
    ratios = {s // m for s, m in zip(spatial_side, spatial_main)}
    if len(ratios) != 1:
        return []
    stride = ratios.pop()
    conv = f"Conv{len(spatial_side)}d"
    stride_text = f", stride={stride}" if stride != 1 else ""
    return [(5, f"give the shortcut a {conv}({side[1]}, {main[1]}, kernel_size=1{stride_text}) "
                f"instead of the identity ('{name}' passes {format_shape(side)})")]


def _variants(layer: Layer, other: Shape | None):
    """Single-argument edits of a conv/pool layer, cheapest first: (cost, new layer, 'arg=value')."""
    fields = {f.name for f in dataclasses.fields(layer) if f.init} if dataclasses.is_dataclass(layer) else set()
    if "stride" in fields and getattr(layer, "stride", None) is not None:
        current = getattr(layer, "_s", (1,))[0]
        for s in range(1, 5):
            if s != current:
                yield abs(s - current), _replace(layer, stride=s), f"stride={s}"
    if "padding" in fields and not isinstance(getattr(layer, "padding", 0), str):
        current = getattr(layer, "_pl", (0,))[0]
        k = getattr(layer, "_k", (3,))[0]
        for p in range(0, k + 1):
            if p != current:
                yield abs(p - current), _replace(layer, padding=p), f"padding={p}"
    if "out_channels" in fields and other is not None and len(other) >= 2:
        yield 1, _replace(layer, out_channels=other[1]), f"out_channels={other[1]}"


def _replace(layer: Layer, **changes: Any) -> Layer:
    try:
        return dataclasses.replace(layer, **changes)
    except Exception:
        return layer


def _local_repairs(diag: Diagnosis, graph: Graph, node: Node, shape: Shape) -> None:
    """Edits of the failing layer itself (padding, stride) that let it take its input."""
    best: dict[str, tuple[int, str]] = {}  # one fix per argument: the smallest change
    for cost, layer, text in _variants(node.layer, None):
        arg = text.split("=")[0]
        if layer is node.layer or arg == "out_channels":
            continue
        if _node_ok(_with_layer(graph, node.name, layer), shape, node.name) is not None:
            if arg not in best or cost < best[arg][0]:
                best[arg] = (cost, f"set {text}")
    diag.fixes.extend(t for _, t in sorted(best.values()))


def _input_fix(diag: Diagnosis, graph: Graph, node: Node, shape: Shape, gives=None) -> None:
    """The nearest square input for which this node works, and the run of sizes around it."""
    if not _square(shape) or not getattr(graph, "scan_sizes", True):
        return
    n0 = shape[2]
    limit = max(64, n0 * SEARCH_FACTOR)
    for delta in range(1, limit):
        for n in (n0 - delta, n0 + delta):
            if n < 1:
                continue
            shapes = _node_ok(graph, _sized(shape, n), node.name)
            if shapes is None:
                continue
            lo = hi = n
            while lo > 1 and _node_ok(graph, _sized(shape, lo - 1), node.name) is not None:
                lo -= 1
            open_ended = False
            while _node_ok(graph, _sized(shape, hi + 1), node.name) is not None:
                hi += 1
                if hi - n > 2 * limit:
                    open_ended = True
                    break
            size = _size_text(_sized(shape, n))
            detail = gives(shapes) if gives else format_shape(shapes[node.name])
            if open_ended:
                span = f"; any size from {lo} up works"
            else:
                span = "" if lo == hi else f"; sizes {lo} to {hi} all work"
            diag.fixes.append(f"use input {size} (gives {detail}{span})")
            return


__all__ = ["Diagnosis", "InputScan", "compact", "diagnose", "runs", "scan_inputs", "shapes_until"]
