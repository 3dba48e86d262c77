"""A model as a DAG of layer nodes, and the single analysis pass over it.

One pass in topological order gives every node its input and output shapes, parameters,
multiply-accumulates, receptive field and notes, or stops at the first node that breaks with a
:class:`ShapeError` naming that node and its numbers. Blocks (sub-graphs with a name) get
records too, summing their children, so tables can be collapsed to any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Container

# Record and Analysis (the pass's results) live in analysis.py; they are imported from here too.
from shapecalc.core.analysis import DTYPE_BYTES, Analysis, Mode, Record  # noqa: F401  (re-exported)
from shapecalc.core.inputs import Inputs, as_inputs, dtype_name
from shapecalc.core.arithmetic import AxisRF
from shapecalc.core.errors import ArgumentError, LayerError
from shapecalc.core.layers import RF, Layer, Shape, format_shape, merge_fields, next_field
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
        return Node(self.name, self.layer, self.inputs, self.module, param_key, params, frozen, notes,
                    param_tensors)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    path: str
    label: str
    source: str  # node feeding the block
    output: str  # node whose value the block returns
    #: Every value it returns, in order, when it returns several (a tuple, a list of branches).
    outputs: tuple[str, ...] = ()


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
    mode: Mode | None = None  # how a traced nn.Module was read; None for a spec
    input_labels: tuple[str, ...] = ()  # the forward's argument names (``x``, ``tokens``)
    #: Node/block path → enclosing blocks, filled by :func:`ancestry` on first use (repeated
    #: analyses of one graph, as in size scans, then share it).
    ancestry_cache: dict[str, tuple[str, ...]] | None = field(
        default=None, init=False, repr=False, compare=False)
    #: (node list, its length, name → node) for :meth:`node`; rebuilt when the list changes.
    node_index: tuple[list, int, dict[str, Node]] | None = field(
        default=None, init=False, repr=False, compare=False)
    #: Block path ("" for the top) → its direct children, filled by :meth:`children` on first use.
    children_cache: dict[str, list[str]] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def input_names(self) -> tuple[str, ...]:
        return (self.input_name,) + tuple(self.extra_inputs)

    # The block tree: asked here, never re-derived from dotted names elsewhere.
    def blocks_of(self, name: str) -> tuple[str, ...]:
        """The blocks enclosing node or block ``name``, outermost first."""
        found = ancestry(self).get(name)
        return found if found is not None else _enclosing_blocks(name, self.blocks)

    def parent(self, name: str) -> str | None:
        """The innermost block holding node or block ``name`` (``None`` at the top level)."""
        found = self.blocks_of(name)
        return found[-1] if found else None

    def parents(self) -> dict[str, str | None]:
        """Every node and block → its innermost enclosing block (``None`` at the top level)."""
        return {name: (up[-1] if up else None) for name, up in ancestry(self).items()}

    def children(self) -> dict[str, list[str]]:
        """Block path (``""``: the model itself) → its direct children (nodes and blocks), in
        the order they first run."""
        if self.children_cache is None:
            tree: dict[str, list[str]] = {"": [], **{path: [] for path in self.blocks}}
            placed: set[str] = set()
            for node in self.nodes:
                chain = ("",) + self.blocks_of(node.name) + (node.name,)
                for up, name in zip(chain, chain[1:]):
                    if name not in placed:
                        placed.add(name)
                        tree[up].append(name)
            self.children_cache = tree
        return self.children_cache

    def members(self) -> dict[str, list[str]]:
        """Block path → the layer nodes inside it at any depth, in execution order (one pass)."""
        inside: dict[str, list[str]] = {path: [] for path in self.blocks}
        for node in self.nodes:
            for path in self.blocks_of(node.name):
                inside[path].append(node.name)
        return inside

    def analyze(self, inputs: Inputs, dtype: str = "float32") -> Analysis:
        """:func:`analyze_graph` of this graph: for the modules that hold an analysis and want
        it at other inputs without importing this one (``core.memory``'s batch)."""
        return analyze_graph(self, inputs, dtype)

    def node(self, name: str) -> Node:
        """The node called ``name``, by an index kept with the node list it was built from, so
        walking a 200,000-node graph by names is linear, not quadratic."""
        index = self.node_index
        if index is None or index[0] is not self.nodes or index[1] != len(self.nodes):
            first = {n.name: n for n in reversed(self.nodes)}  # a repeated name: its first node
            index = self.node_index = (self.nodes, len(self.nodes), first)
        found = index[2].get(name)
        if found is None:
            raise KeyError(name)
        return found


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
            param_key: str | None = None) -> str:
        if name in self._names:
            raise ValueError(f"duplicate node name {name!r}")
        self._names.add(name)
        self.nodes.append(Node(name, layer, inputs, module, param_key or name))
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


class EnclosingPaths:
    """Name → the paths among ``containers`` that are proper dotted prefixes of it, outermost
    first: node names are module paths, so these are the blocks (or modules) holding it. This
    is the one place that reads the tree from names; everything else asks :class:`Graph`.

    A path's prefixes are its parent's plus the parent itself, so the answer for each distinct
    parent path is worked out once, from its own parent's: siblings (a block's hundred layers)
    share one answer instead of each walking its dots again."""

    def __init__(self, containers: Container[str]) -> None:
        self.containers = containers
        #: path → the containers among its prefixes and itself (its children's answer)
        self.closed: dict[str, tuple[str, ...]] = {}

    def __call__(self, name: str) -> tuple[str, ...]:
        head, dot, _ = name.rpartition(".")
        if not dot:
            return ()
        found = self.closed.get(head)
        return found if found is not None else self._closed(head)

    def _closed(self, path: str) -> tuple[str, ...]:
        # Climb to the nearest head already known (or past the top), then come back down
        # recording each path: a loop, not recursion, for names may nest arbitrarily deep.
        climbed = []
        found = None
        while found is None:
            climbed.append(path)
            path, dot, _ = path.rpartition(".")
            found = self.closed.get(path) if dot else ()
        for p in reversed(climbed):
            if p in self.containers:
                found += (p,)
            self.closed[p] = found
        return found


def _enclosing_blocks(name: str, blocks: dict[str, BlockInfo]) -> tuple[str, ...]:
    return EnclosingPaths(blocks)(name)


def ancestry(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Node/block path → the blocks enclosing it, outermost first; computed once per graph
    because repeated analyses (minimum-input scans, input ranges) reuse the same graph."""
    if graph.ancestry_cache is None:
        enclosing = EnclosingPaths(graph.blocks)
        cache = {n.name: enclosing(n.name) for n in graph.nodes}
        cache.update((path, enclosing(path)) for path in graph.blocks)
        graph.ancestry_cache = cache
    return graph.ancestry_cache


def input_list(input_shape) -> list[Shape]:
    """One shape ``(1, 3, 224, 224)``, several ``[(1, 3, 224, 224), (1, 77)]`` or :class:`Inputs`
    → a list of shapes."""
    return list(as_inputs(input_shape).shapes)


def analyze_graph(graph: Graph, inputs: Inputs | Shape | list[Shape], dtype: str = "float32",
                  input_dtypes: tuple[str, ...] | None = None) -> Analysis:
    """Run the one analysis pass; raise :class:`ShapeError` located at the first failing node.

    ``inputs``: one per graph input (``graph.input_names``), as :class:`Inputs` (the checked
    value every entry point builds) or, for the engine's own callers, a shape or a list of
    shapes with ``input_dtypes`` (default float32); ``dtype``: what memory figures assume.
    """
    dtype = dtype_name(dtype, "dtype")
    inputs = as_inputs(inputs, input_dtypes)
    names = graph.input_names
    if len(inputs) != len(names):
        raise ArgumentError("input_shape", f"{graph.name} takes {len(names)} input(s) "
                                           f"({', '.join(graph.input_labels or names)}), got "
                                           f"{len(inputs)} shape(s)")
    if graph.input_labels:
        inputs = inputs.labelled(graph.input_labels)
    shapes_in = inputs.shapes
    shapes: dict[str, Shape] = dict(zip(names, shapes_in))
    fields: dict[str, RF] = {
        name: tuple(AxisRF.identity() for _ in range(max(len(s) - 2, 0))) or None
        for name, s in zip(names, shapes_in)
    }
    records: list[Record] = []
    seen_params: set[str] = set()
    total_params = total_macs = frozen = 0
    uncounted: list[str] = []
    parents = ancestry(graph)
    # Layers are frozen values and often shared (a thousand identical blocks): what a layer
    # says about given input shapes is worked out once. Receptive fields depend on the path
    # so far and are computed at every node.
    known: dict[tuple, tuple] = {}
    for node in graph.nodes:
        sources = node.inputs  # most nodes have one: no comprehension (a frame each, Python 3.11)
        ins = (shapes[sources[0]],) if len(sources) == 1 else tuple([shapes[i] for i in sources])
        layer = node.layer
        try:
            answer = known.get((id(layer), ins))
            if answer is None:
                out = layer.output_shape(*ins)
                resolved = layer.resolve(*ins) if layer.inferred else layer
                answer = (out, resolved, resolved.mac_count(out, *ins), tuple(layer.notes(out, *ins)),
                          layer.field_steps(*ins), layer.type_name)
                known[(id(layer), ins)] = answer
            out, resolved, macs, layer_notes, steps, type_name = answer
            params = resolved.param_count(*ins) if node.params is None else node.params
            if len(ins) == 1:
                rf = next_field(fields[sources[0]], steps)
            else:
                rf = merge_fields([fields[i] for i in sources], steps)
            notes = [*layer_notes, *node.notes]
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
        if macs is None:  # neither a rule nor torch's counter: unknown, never a silent 0
            uncounted.append(node.name)
        else:
            total_macs += macs
        shapes[node.name] = out
        fields[node.name] = rf
        records.append(
            Record(node.name, type_name, ins, out, params, macs, rf,
                   notes, len(parents[node.name]), False, resolved, shared)
        )
    block_records = _block_records(graph, records, shapes, fields)
    outputs = [(label, shapes[name]) for label, name in graph.outputs] or [
        ("output", shapes[graph.output])]
    return Analysis(graph.name, inputs, shapes[graph.output], records, block_records,
                    total_params + graph.loose_params, total_macs, dtype, graph, outputs=outputs,
                    notes=list(graph.notes), frozen_params=frozen + graph.loose_frozen,
                    mode=graph.mode, uncounted=uncounted)


def _block_records(graph: Graph, records: list[Record], shapes: dict[str, Shape],
                   fields: dict[str, RF]) -> dict[str, Record]:
    if not graph.blocks:
        return {}
    # Each record is credited to its innermost block only, then every block, innermost first,
    # hands its sums to its parent: O(nodes + blocks), where crediting every enclosing block
    # from every record is O(nodes × depth). Parameters and notes add up alike either way, and
    # an unknown MAC count (None) makes every block above it unknown either way.
    parents = ancestry(graph)
    sums: dict[str, list] = {path: [0, 0, set()] for path in graph.blocks}
    for rec in records:
        up = parents[rec.name]
        if up:
            _credit(sums[up[-1]], 0 if rec.shared else rec.params, rec.macs,
                    rec.notes and [n for n in rec.notes if n.kind is NoteKind.DROPS])
    for path in sorted(graph.blocks, key=lambda p: len(parents[p]), reverse=True):
        up = parents[path]
        if up:
            _credit(sums[up[-1]], *sums[path])
    out: dict[str, Record] = {}
    for path, info in graph.blocks.items():
        params, macs, notes = sums[path]
        out[path] = Record(
            path, info.label, (shapes[info.source],), shapes[info.output], params, macs,
            fields[info.output], sorted(notes, key=str), len(parents[path]), True, label=info.label,
            output_shapes=tuple([shapes[o] for o in info.outputs]) if info.outputs else (),
        )
    return out


def _credit(acc: list, params: int, macs: int | None, drops) -> None:
    """Add one record's (or one inner block's) parameters, MACs and dropped-pixel notes to a
    block's running ``[params, macs, notes]``."""
    acc[0] += params
    if acc[1] is not None:
        acc[1] = None if macs is None else acc[1] + macs
    if drops:
        acc[2].update(drops)
