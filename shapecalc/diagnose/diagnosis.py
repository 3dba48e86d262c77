"""Why a model does not fit its input, in the user's terms, and the smallest changes that fix it.

torch says ``mat1 and mat2 shapes cannot be multiplied (1x6400 and 9216x4096)``; this module
says ``Linear(9216, 4096) receives 6,400 features (256×5×5) at input 224×224: set
in_features=6400, or use input 225×225 (gives 256×6×6 = 9216)``. Every suggested fix is
checked by re-running the engine with the change applied, so a fix is never a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from math import prod
from typing import Any, Sequence

from shapecalc.core.inputs import Inputs
from shapecalc.models.api import analyze, load_model
from shapecalc.core.errors import ConfigError, LayerError, Reason, ShapeError
from shapecalc.diagnose.failure_case import (
    FailureCase, input_fix, node_ok_before, resizable, shapes_until,
)
from shapecalc.diagnose.batch import FLATTEN_FIX, BatchFold, batch_keeping_layer, find_fold, line_of
from shapecalc.diagnose.fixes import Fix, FixKind, apply_fix
from shapecalc.core.graph import Graph, analyze_graph
from shapecalc.diagnose.input_scan import InputScan, compact, runs, scan_inputs
from shapecalc.diagnose.layer_repairs import local_repairs, merge_fixes
from shapecalc.core.layers import LayerKind, Shape, format_shape
from shapecalc.models.model_source import ModelSource
from shapecalc.core.notes import NoteKind, has_kind
from shapecalc.core.registry import DIAGNOSIS, show


@dataclass
class Diagnosis:
    """The verdict for one input (or one set of inputs): fits, or the first failing node with
    its explanation and fixes."""

    model: str
    #: The (first) input's shape; ``input_shapes`` has every input's, for a forward taking several.
    input_shape: Shape
    fits: bool
    output_shape: Shape | None = None
    node: str | None = None
    layer: str | None = None
    problem: str = ""
    expected: str = ""
    got: str = ""
    #: Verified fixes, smallest change first: each a ``str`` (its sentence) that also carries
    #: what to change (:class:`~shapecalc.diagnose.fixes.Fix`: kind, node, field, value, size).
    fixes: list[Fix] = field(default_factory=list)
    dropping: list[str] = field(default_factory=list)
    #: When no input size is proposed: what the size search covered, or why none can work.
    searched: str = ""
    input_shapes: tuple[Shape, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    #: The forward's argument names (``left``, ``right``), one per input, when it takes several.
    input_labels: tuple[str, ...] = ()
    #: Set when the sizes work but the batch is not kept (``view(-1, 400)`` at the wrong size):
    #: the operation that loses it. Such a model does not fit (``fits`` is False).
    batch_fold: BatchFold | None = None

    def headline(self) -> str:
        """``✓ … fits …``, ``✗ … does not fit …`` or ``✗ … does not keep the batch at …``."""
        if self.fits:
            return f"✓ {self.summary()}"
        if self.batch_fold is not None:
            return f"✗ {self.model} does not keep the batch at {self.inputs_text()}"
        return f"✗ {self.model} does not fit {self.inputs_text()}"

    def inputs_text(self) -> str:
        """``input 1×3×224×224``, or ``inputs image 1×3×224×224, tokens 1×77 int64``."""
        shapes = self.input_shapes or (self.input_shape,)
        if len(shapes) == 1:
            return f"input {format_shape(shapes[0])}"
        return "inputs " + _labelled(shapes, self.input_labels, self.input_dtypes)

    def summary(self) -> str:
        """One sentence: the problem and its fixes (the form quoted in the issue tracker)."""
        if self.fits:
            return f"{self.model} fits {self.inputs_text()} → {format_shape(self.output_shape)}"
        if not self.fixes:
            return self.problem
        return f"{self.problem}: {', or '.join(self.fixes)}"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["summary"] = self.summary()
        out["fixes"] = [str(f) for f in self.fixes]
        out["fix_details"] = [f.details() for f in self.fixes]
        return out

    # Display: the diagnosis renderers of shapecalc.output (output/diagnosis.py), looked
    # up in the registry by name.
    def __repr__(self) -> str:
        return show(DIAGNOSIS, self, "repr")

    def __str__(self) -> str:
        return show(DIAGNOSIS, self, "text")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self) if cycle else str(self))

    def _repr_html_(self) -> str:
        return show(DIAGNOSIS, self, "html")

    def _repr_markdown_(self) -> str:
        return show(DIAGNOSIS, self, "markdown")


def _labelled(shapes: Sequence[Shape], labels: Sequence[str], dtypes: Sequence[str]) -> str:
    """``left 1×3×32×32, right 1×3×32×32`` (an element type after a shape that is not float32)."""
    parts = []
    for i, shape in enumerate(shapes):
        kind = dtypes[i] if i < len(dtypes) else "float32"
        label = labels[i] if i < len(labels) else f"input_{i}"
        parts.append(f"{label} {format_shape(shape)}" + ("" if kind == "float32" else f" {kind}"))
    return ", ".join(parts)


_SEE_THROUGH = frozenset({LayerKind.RESHAPE, LayerKind.DROPOUT, LayerKind.ACTIVATION})


def _feature_source(graph: Graph, name: str) -> str:
    """The node whose output a Linear's features came from, looking back through Flatten/Reshape
    and the shape-preserving layers (dropout, activations) that often sit in between."""
    cur = graph.node(name).inputs[0]
    while cur not in graph.input_names:
        node = graph.node(cur)
        if node.layer.kind not in _SEE_THROUGH or len(node.inputs) != 1:
            break
        cur = node.inputs[0]
    return cur


def _per_sample(shape: Shape) -> str:
    return "×".join(map(str, shape[1:])) if len(shape) > 2 else str(shape[-1])


# ------------------------------------------------------------------ the diagnosis
def diagnose(model: Any, input_shape: Any = None, *,
             input_dtypes: Sequence[str] | str | None = None, analysis: Any = None) -> Diagnosis:
    """Analyse ``model`` at ``input_shape``; when it breaks, say where, why and how to fix it.

    ``input_shape`` and ``input_dtypes`` as :func:`shapecalc.analyze` takes them: one shape, or
    one per input of a forward that takes several (``[(1, 3, 32, 32), (1, 77)]`` with
    ``input_dtypes=["float32", "int64"]``), or :class:`~shapecalc.core.inputs.Inputs`. A fix
    that changes an input size names the inputs it changes (``Fix.value``: their numbers).
    ``analysis``, the caller's own analysis of these very inputs (``shapecalc report`` has one),
    saves analysing them again.
    """
    src: ModelSource = load_model(model)
    inputs = input_shape if isinstance(input_shape, Inputs) else src.inputs(input_shape, input_dtypes)
    shapes = list(inputs.shapes)
    verdict = _Verdict(src, inputs.shapes, inputs.dtypes)
    try:
        result = analysis if analysis is not None else analyze(src, inputs)
    except ConfigError as err:  # the layer's own arguments: no input size or neighbour can fix it
        return verdict(src.graph, False, node=err.node, layer=err.layer,
                       problem=f"{err} (whatever the input)")
    except LayerError as err:
        # A module that had to be recorded by running it (untraceable forward) was cut where
        # torch refused: that partial graph is what can be explained. Such a recording says
        # nothing about other sizes, so no input size is searched for it.
        graph = err.partial_graph if err.partial_graph is not None else src.graph
        if (graph is None or not isinstance(err, ShapeError)
                or len(graph.input_names) != len(shapes)):
            return verdict(graph, False, node=err.node, layer=err.layer, problem=str(err))
        return _explain(verdict, graph, err, scan_sizes=src.scannable)
    fold = find_fold(src, inputs, result)
    if fold is not None:
        return _explain_fold(verdict, result, fold, scan_sizes=src.scannable)
    dropping = [r.name for r in result.records if has_kind(r.notes, NoteKind.DROPS)]
    return verdict(result.graph, True, result.output_shape, dropping=dropping)


def _explain_fold(verdict: _Verdict, result, fold: BatchFold, scan_sizes: bool) -> Diagnosis:
    """Sizes that "fit" while the batch is folded: name the operation and its line, give the
    batch-keeping code and the input sizes at which the model as written keeps the batch."""
    graph = result.graph
    diag = verdict(graph, False, result.output_shape, node=fold.node, layer=fold.layer,
                   problem=fold.problem(), batch_fold=fold)
    diag.expected = f"output batch {fold.batch}, as the input's"
    diag.got = f"{format_shape(fold.output)} (batch {fold.after[0]} from '{fold.node}')"
    shapes = list(verdict.shapes)
    node = graph.node(fold.node)
    case = FailureCase(graph, shapes, node, [fold.before],
                       resizable(graph, shapes, node) if scan_sizes else [], diag)
    _batch_code_fix(diag, case, fold.where)
    input_fix(diag, case)
    return diag


def _batch_code_fix(diag: Diagnosis, case: FailureCase, where: str | None) -> None:
    """``view(-1, K)`` → ``flatten(1)``, with the ``in_features`` the Linear after it then
    needs; verified through the whole model, batch included, or not proposed."""
    node = case.node
    keeping = batch_keeping_layer(node.layer)
    if keeping is None:
        return
    at = f" at {where}" if where else ""
    text = f"write {FLATTEN_FIX}{at} instead of the reshape to ({', '.join(map(str, node.layer.shape))})"
    also: list[Fix] = []
    for _ in range(4):  # each Linear on the way may need its in_features set
        fix = Fix(text + "".join(f", and {f}" for f in also), FixKind.SET, node.name, "shape",
                  keeping.shape, also=tuple(also))
        if case.verified(fix):
            diag.fixes.append(fix)
            return
        graph, shapes = apply_fix(case.graph, case.shapes, fix)
        try:
            analyze_graph(graph, shapes if len(shapes) > 1 else shapes[0])
            return  # fits, but the batch is still not kept: no code fix to offer
        except LayerError as err:
            if err.reason is not Reason.FEATURES or err.node is None:
                return
            also.append(Fix(f"set in_features={err.numbers['features']} on '{err.node}'",
                            FixKind.SET, err.node, "in_features", err.numbers["features"]))


@dataclass(frozen=True)
class _Verdict:
    """What every diagnosis of one call repeats: the model and its inputs."""

    src: ModelSource
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]

    def labels(self, graph: Graph | None) -> tuple[str, ...]:
        """The forward's argument names, one per input (none for a model with one input)."""
        count = len(self.shapes)
        if count < 2:
            return ()
        names = tuple(graph.input_labels or graph.input_names) if graph is not None else ()
        if len(names) == count:
            return names
        if self.src.torch_import is not None:  # a recording cut short: ask the forward itself
            from shapecalc.torch_bridge.fx_hooks import input_names

            return tuple(input_names(self.src.torch_import.module, count))
        return tuple(f"input_{i}" for i in range(count))

    def __call__(self, graph: Graph | None, fits: bool, output: Shape | None = None,
                 **details: Any) -> Diagnosis:
        return Diagnosis(self.src.name, self.shapes[0], fits, output, input_shapes=self.shapes,
                         input_dtypes=self.dtypes, input_labels=self.labels(graph), **details)


def _explain(verdict: _Verdict, graph: Graph, err: ShapeError, scan_sizes: bool = True) -> Diagnosis:
    """Dispatch on ``err.reason``: each kind of refusal has its own explanation and fixes."""
    name = err.node or ""
    try:
        node = graph.node(name)
    except KeyError:
        return verdict(graph, False, node=name, layer=err.layer, problem=str(err))
    shapes = list(verdict.shapes)
    ins = shapes_until(graph, shapes, name)
    diag = verdict(graph, False, node=name, layer=node.layer.describe())
    case = FailureCase(graph, shapes, node, [ins[i] for i in node.inputs],
                       resizable(graph, shapes, node) if scan_sizes else [], diag)
    numbers, inputs, at = err.numbers, case.inputs, case.at
    if err.reason is Reason.FEATURES:
        _linear(diag, case, numbers, ins)
    elif err.reason is Reason.CHANNELS:
        _channels(diag, case, numbers)
    elif err.reason is Reason.MERGE:
        merge_fixes(diag, case)
        if len(shapes) > 1:  # inputs of different sizes may be what disagrees
            input_fix(diag, case)
    elif err.reason is Reason.ELEMENTS:
        per = prod(inputs[0][1:])
        diag.expected = f"{numbers['known']} elements"
        diag.got = f"{numbers['elements']} elements ({format_shape(inputs[0])})"
        where = line_of(verdict.src, name)
        diag.problem = (f"{node.layer.describe()} at '{name}'{f' ({where})' if where else ''} "
                        f"receives {format_shape(inputs[0])} ({per} per sample) {at}")
        if batch_keeping_layer(node.layer) is not None:
            _batch_code_fix(diag, case, where)
        else:
            case.propose(diag, Fix(f"view it as (N, -1) or (N, {per})", FixKind.SET, name, "shape", (0, -1)))
        input_fix(diag, case)
    else:
        diag.problem = f"'{name}' {node.layer.describe()} cannot take {format_shape(inputs[0]) if inputs else '?'} {at}: {err.message}"
        diag.expected, diag.got = err.message, " and ".join(format_shape(s) for s in inputs)
        local_repairs(diag, case)
        input_fix(diag, case)
    return diag


def _linear(diag: Diagnosis, case: FailureCase, numbers: dict, before: dict[str, Shape]) -> None:
    graph, node = case.graph, case.node
    layer = node.layer
    features, expected = numbers["features"], numbers["in_features"]
    src = _feature_source(graph, node.name)
    pre = before[src]
    shown = f"{features:,} features ({_per_sample(pre)})" if len(pre) > 2 else f"{features:,} features"
    diag.problem = f"Linear({expected}, {layer.out_features}) receives {shown} {case.at}"
    diag.expected, diag.got = f"{expected:,} input features", shown
    case.propose(diag, Fix(f"set in_features={features}", FixKind.SET, node.name, "in_features", features))

    def gives(shapes: dict[str, Shape]) -> str:
        p = shapes[src]
        return f"{_per_sample(p)} = {expected:,}" if len(p) > 2 else f"{expected:,}"

    def features_at(inputs: list[Shape]) -> int | None:
        shapes = node_ok_before(graph, inputs, node)
        return None if shapes is None else shapes[node.inputs[0]][-1]

    input_fix(diag, case, gives, (features_at, expected))


def _channels(diag: Diagnosis, case: FailureCase, numbers: dict) -> None:
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
    while cur not in graph.input_names:
        up = graph.node(cur)
        if hasattr(up.layer, "out_channels"):
            case.propose(diag, Fix(f"set out_channels={expected} on '{cur}' ({up.layer.describe()})",
                                   FixKind.SET, cur, "out_channels", expected))
            break
        if len(up.inputs) != 1:
            break
        cur = up.inputs[0]


__all__ = ["Diagnosis", "Fix", "FixKind", "InputScan", "compact", "diagnose", "runs", "scan_inputs", "shapes_until"]
