"""A model as a DAG of layer nodes, and the single analysis pass over it.

One pass in topological order gives every node its input and output shapes, parameters,
multiply-accumulates, receptive field and notes, or stops at the first node that breaks with a
:class:`ShapeError` naming that node and its numbers. Blocks (sub-graphs with a name) get
records too, summing their children, so tables can be collapsed to any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Record and Analysis (the pass's results) live in analysis.py; they are imported from here too.
from shapecalc.core.analysis import DTYPE_BYTES, Analysis, Record
from shapecalc.core.arithmetic import AxisRF
from shapecalc.core.errors import ArgumentError, LayerError, ShapeError
from shapecalc.core.layers import RF, Layer, Shape, format_shape, merge_rf
from shapecalc.core.notes import NoteKind


@dataclass(frozen=True, slots=True)
class Node:
    """One layer application. ``module`` is the torch module path that runs it (``None`` for
    merges and functional calls); ``param_key`` identifies shared weights (defaults to name)."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]
    module: str | None = None
    param_key: str | None = None
    origin: str = "derived"  # "measured" when the shape came from running torch
    #: Parameters this node is the first user of, counted from the real module (torch imports);
    #: ``None``: the layer's own formula. ``frozen``: how many of them have requires_grad False.
    params: int | None = None
    frozen: int = 0
    notes: tuple = ()  # typed Notes the importer attached (how a parameter was used, …)
    #: Trainable parameter tensors among ``params`` (an optimizer keeps a step per tensor);
    #: ``None``: the layer's own formula.
    param_tensors: int | None = None

    def counted(self, params: int, frozen: int, notes: tuple, param_key: str,
                param_tensors: int | None = None) -> "Node":
        """This node with the parameters an importer found it to own (``dataclasses.replace``
        is several times slower, and deep models have thousands of nodes)."""
        return Node(self.name, self.layer, self.inputs, self.module, param_key, self.origin,
                    params, frozen, notes, param_tensors)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    path: str
    label: str
    source: str  # node feeding the block
    output: str  # node whose value the block returns


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    output: str
    blocks: dict[str, BlockInfo] = field(default_factory=dict)
    input_name: str = "input"
    #: Further graph inputs (a forward with several tensor arguments), after ``input_name``.
    extra_inputs: tuple[str, ...] = ()
    #: Every value the forward returns as (label, node): a tuple's items, a dict's keys.
    outputs: tuple[tuple[str, str], ...] = ()
    #: Facts about the whole model (hook fallback and why, unused parameters, …): typed Notes.
    notes: list = field(default_factory=list)
    #: Parameters no node owns (used by no forward, or used where hooks cannot see): counted once.
    loose_params: int = 0
    loose_frozen: int = 0
    mode: str | None = None  # "eval"/"train" for a traced nn.Module; None for a spec
    input_labels: tuple[str, ...] = ()  # the forward's argument names (``x``, ``tokens``)
    #: Node/block path → enclosing blocks, filled by :func:`ancestry` on first use (repeated
    #: analyses of one graph, as in size scans, then share it).
    ancestry_cache: dict[str, tuple[str, ...]] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        return (self.input_name,) + tuple(self.extra_inputs)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


class GraphBuilder:
    """Collects nodes while a spec tree (or a torch trace) is walked."""

    input_name = "input"

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.blocks: dict[str, BlockInfo] = {}
        self._open: dict[str, tuple[str, str]] = {}
        self._names: set[str] = {self.input_name}
        self.extra_inputs: list[str] = []

    def add(self, name: str, layer: Layer, inputs: tuple[str, ...], module: str | None = None,
            param_key: str | None = None, origin: str = "derived") -> str:
        if name in self._names:
            raise ValueError(f"duplicate node name {name!r}")
        self._names.add(name)
        self.nodes.append(Node(name, layer, inputs, module, param_key or name, origin))
        return name

    def add_input(self, name: str) -> str:
        """A further graph input (the first is always ``input_name``)."""
        if name in self._names:
            raise ValueError(f"duplicate node name {name!r}")
        self._names.add(name)
        self.extra_inputs.append(name)
        return name

    def open_block(self, path: str, label: str, source: str) -> None:
        self._open[path] = (label, source)

    def close_block(self, path: str, output: str) -> None:
        label, source = self._open.pop(path)
        self.blocks[path] = BlockInfo(path, label, source, output)

    def finish(self, output: str) -> Graph:
        return Graph(self.name, self.nodes, output, self.blocks, self.input_name,
                     tuple(self.extra_inputs))


def _enclosing_blocks(name: str, blocks: dict[str, BlockInfo]) -> tuple[str, ...]:
    found = []
    dot = name.find(".")
    while dot != -1:  # every proper prefix ending before a dot: "a", "a.b" for "a.b.c"
        if name[:dot] in blocks:
            found.append(name[:dot])
        dot = name.find(".", dot + 1)
    return tuple(found)


def ancestry(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Node/block path → the blocks enclosing it, outermost first; computed once per graph
    because repeated analyses (minimum-input scans, input ranges) reuse the same graph."""
    if graph.ancestry_cache is None:
        names = [n.name for n in graph.nodes] + list(graph.blocks)
        graph.ancestry_cache = {name: _enclosing_blocks(name, graph.blocks) for name in names}
    return graph.ancestry_cache


def input_list(input_shape) -> list[Shape]:
    """One shape ``(1, 3, 224, 224)`` or several ``[(1, 3, 224, 224), (1, 77)]`` → a list of shapes."""
    shape = tuple(input_shape)
    if shape and all(isinstance(s, (tuple, list)) for s in shape):
        return [tuple(s) for s in shape]
    return [shape]


def analyze_graph(graph: Graph, input_shape, dtype: str = "float32",
                  input_dtypes: tuple[str, ...] | None = None) -> Analysis:
    """Run the one analysis pass; raise :class:`ShapeError` located at the first failing node.

    ``input_shape`` is one shape, or one per graph input (``graph.input_names``) for a model
    with several inputs; ``input_dtypes`` names each input's element type (default float32).
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPE_BYTES)}")
    shapes_in = input_list(input_shape)
    names = graph.input_names
    if len(shapes_in) != len(names):
        raise ArgumentError("input_shape", f"{graph.name} takes {len(names)} input(s) "
                                           f"({', '.join(graph.input_labels or names)}), got "
                                           f"{len(shapes_in)} shape(s)")
    kinds = tuple(input_dtypes) if input_dtypes else ("float32",) * len(names)
    if len(kinds) != len(names) or any(k not in DTYPE_BYTES for k in kinds):
        raise ArgumentError("input_dtypes", f"give one of {', '.join(DTYPE_BYTES)} for each of "
                                            f"the {len(names)} input(s), got {list(kinds)}")
    input_shape = shapes_in[0]
    shapes: dict[str, Shape] = dict(zip(names, shapes_in))
    fields: dict[str, RF] = {
        name: tuple(AxisRF(1, 1, 0.0) for _ in range(max(len(s) - 2, 0))) or None
        for name, s in zip(names, shapes_in)
    }
    records: list[Record] = []
    seen_params: set[str] = set()
    total_params = total_macs = frozen = 0
    parents = ancestry(graph)
    # Layers are frozen values and often shared (a thousand identical blocks): what a layer
    # says about given input shapes is worked out once. Receptive fields depend on the path
    # so far and are computed at every node.
    known: dict[tuple, tuple] = {}
    for node in graph.nodes:
        ins = tuple(shapes[i] for i in node.inputs)
        layer = node.layer
        try:
            answer = known.get((id(layer), ins))
            if answer is None:
                out = layer.output_shape(*ins)
                resolved = layer.resolve(*ins) if layer.inferred else layer
                answer = (out, resolved, resolved.mac_count(out, *ins), tuple(layer.notes(out, *ins)))
                known[(id(layer), ins)] = answer
            out, resolved, macs, layer_notes = answer
            params = resolved.param_count(*ins) if node.params is None else node.params
            if len(ins) == 1:
                rf = layer.receptive_field(fields[node.inputs[0]], *ins)
            else:
                rf = merge_rf([fields[i] for i in node.inputs])
            notes = list(layer_notes) + list(node.notes)
        except LayerError as err:
            located = err.located(node.name, layer.describe())
            if len(ins) > 1:  # a merge: name the producers that disagree, not only the merge
                located.message += " (inputs: " + ", ".join(
                    f"'{i}' {format_shape(s)}" for i, s in zip(node.inputs, ins)) + ")"
            raise located from None
        shared = node.param_key in seen_params
        if not shared:
            seen_params.add(node.param_key or node.name)
            total_params += params
            frozen += node.frozen
        total_macs += macs
        shapes[node.name] = out
        fields[node.name] = rf
        records.append(
            Record(node.name, layer.type_name, ins, out, params, macs, rf,
                   notes, len(parents[node.name]), False, resolved, node.origin, shared)
        )
    block_records = _block_records(graph, records, shapes, fields)
    outputs = [(label, shapes[name]) for label, name in graph.outputs] or [
        ("output", shapes[graph.output])]
    return Analysis(graph.name, input_shape, shapes[graph.output], records, block_records,
                    total_params + graph.loose_params, total_macs, dtype, graph,
                    input_shapes=tuple(shapes_in), input_dtypes=kinds, outputs=outputs,
                    notes=list(graph.notes), frozen_params=frozen + graph.loose_frozen,
                    mode=graph.mode)


def _block_records(graph: Graph, records: list[Record], shapes: dict[str, Shape],
                   fields: dict[str, RF]) -> dict[str, Record]:
    if not graph.blocks:
        return {}
    # One pass over the records, crediting each to every enclosing block: O(nodes × depth).
    sums: dict[str, list] = {path: [0, 0, set()] for path in graph.blocks}
    parents = ancestry(graph)
    for rec in records:
        for block in parents[rec.name]:
            acc = sums[block]
            if not rec.shared:
                acc[0] += rec.params
            acc[1] += rec.macs
            acc[2].update(n for n in rec.notes if n.kind is NoteKind.DROPS)
    out: dict[str, Record] = {}
    for path, info in graph.blocks.items():
        params, macs, notes = sums[path]
        out[path] = Record(
            path, info.label, (shapes[info.source],), shapes[info.output], params, macs,
            fields[info.output], sorted(notes, key=str), len(parents[path]), True, label=info.label,
        )
    return out


def smallest_input(graph: Graph, template: Shape, limit: int = 4096) -> int | None:
    """The smallest square (cubic, …) spatial size that the whole graph accepts.

    Scans upwards rather than bisecting: validity need not be monotone in the size once
    branches must agree, and the engine is fast enough that a scan costs milliseconds.
    """
    head = tuple(template[:2])
    ndim = len(template) - 2
    for n in range(1, limit + 1):
        try:
            analyze_graph(graph, head + (n,) * ndim)
            return n
        except ShapeError:
            continue
    return None
