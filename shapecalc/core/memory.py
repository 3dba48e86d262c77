"""What one training step holds, layer by layer: parameters, gradients, optimizer state and the
activations autograd saves for backward, and the peaks of a training step and of inference.

Each layer kind states what it saves (``Layer.saved``, :mod:`shapecalc.core.layers.saved`); this
module follows the values through the graph: which need a gradient (the image does not; what a
trainable weight touched does), which storage each value lives in (a view or an in-place op
shares its input's), and counts every kept storage once, at the first layer that keeps it.

For a model that came from torch, one forward on the meta device with autograd saving
(``Analysis.saved_run``, :class:`MeasuredRun`) says instead which storage every value lives in
and what each node saved: a transformer read with hooks runs functions no rule covers, and
an op's strides (a matmul on a permuted view keeps a contiguous copy) show only in the
model's own forward.

The peaks come from replaying the step in execution order, freeing memory as PyTorch does
(:mod:`shapecalc.core.step_replay`).

Assumptions (listed in :attr:`MemoryReport.assumptions`, worded in :mod:`.memory_setup`): the usual loop
``zero_grad(set_to_none=True)`` → forward → backward → ``step()`` after the first step (the
optimizer state exists already), the batch is alive through the step, and kernels' private
workspaces (cuDNN, oneDNN) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import TYPE_CHECKING, Any, Callable

from shapecalc.core.inputs import DTYPE_BYTES
from shapecalc.core.layers.base import LayerKind
from shapecalc.core.layers.saved import Backward, Kept, Saved
from shapecalc.core.memory_setup import (MAX_BATCH, TRAIN_DTYPES, Optimizer, Settings,
                                         assumptions, check_batch, settings, step_transient)
from shapecalc.core.notes import NoteKind
from shapecalc.core.step_replay import Step, Timeline

if TYPE_CHECKING:
    from shapecalc.core.analysis import Analysis, Record
    from shapecalc.core.layers import Layer, Shape


#: Layer kinds autocast runs in bfloat16 (matrix products); the rest follow their input.
_AUTOCAST_LOWER = frozenset({LayerKind.CONV, LayerKind.LINEAR})
#: Layers autocast runs in float32 (torch's autocast fp32 list).
_AUTOCAST_FP32 = frozenset({"LayerNorm", "GroupNorm", "Softmax", "LogSoftmax", "RMSNorm"})
#: ``measure(layer, grad, output, *inputs)``: saved tensors measured with torch for a layer
#: without a rule (set by the torch bridge for models that came from torch).
SavedMeasure = Callable[..., "tuple[Saved, ...] | None"]


@dataclass(frozen=True, slots=True)
class MeasuredNode:
    """What a recorded forward measured for one node. Storages are keys (one key, one
    storage: a view or an in-place op keeps its input's) with their bytes."""

    output: int  # the storage the node's output lives in
    output_bytes: int
    #: (storage, bytes) of each tensor autograd saved while the node ran, parameters excluded
    saved: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class MeasuredRun:
    """One forward, recorded with autograd saving (``Analysis.saved_run``): per node name
    (the graph's inputs too), its :class:`MeasuredNode`."""

    nodes: dict[str, MeasuredNode]


@dataclass(frozen=True, slots=True)
class LayerMemory:
    """One node's share of a training step, in bytes. ``saved`` counts the storages this node
    is the first to keep (``None``: unknown); ``output`` is its output's size."""

    name: str
    saved: int | None
    params: int
    grads: int
    optimizer: int | None
    output: int
    dtype: str


@dataclass(frozen=True)
class MemoryReport:
    """A training step's memory, per layer and in total, in bytes; ``None`` is unknown."""

    layers: tuple[LayerMemory, ...]
    parameters: int
    gradients: int
    optimizer_state: int | None
    saved_activations: int | None
    peak_train: int | None
    peak_eval: int
    batch: int
    dtype: str
    optimizer: Optimizer
    amp: bool
    mode: str
    cuda: bool
    #: Where the training peak falls: "forward", "backward of <node>", "optimizer step".
    peak_train_at: str | None
    #: Nodes whose saved tensors are unknown (no rule, nothing measured).
    unknown: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = field(default=())
    #: The roofline device these figures assume (its name in ``core.roofline.DEVICES``).
    device: str = "h100"
    #: The analysis (at this batch) the figures are of: what the displays name rows after.
    analysis: Any = field(default=None, repr=False, compare=False)

    # Displays come from the renderer registry (shapecalc.output.memory registers them).
    def text(self) -> str:
        """The table, totals, what dominates and the assumptions, as ``shapecalc memory``."""
        from shapecalc.core.registry import MEMORY, show

        return show(MEMORY, self, "text")

    def svg(self) -> str:
        """The roofline plot, one dot per layer."""
        from shapecalc.core.registry import MEMORY, show

        return show(MEMORY, self, "svg")

    def _repr_html_(self) -> str:
        from shapecalc.core.registry import MEMORY, show

        return show(MEMORY, self, "html")

    def to_dict(self) -> dict[str, Any]:
        """The JSON keys of ``shapecalc memory --json`` (bytes; ``null`` is unknown)."""
        return {
            "batch": self.batch, "dtype": self.dtype, "amp": self.amp,
            "optimizer": self.optimizer.value, "mode": self.mode,
            "memory": {"parameters": self.parameters, "gradients": self.gradients,
                       "optimizer_state": self.optimizer_state,
                       "saved_activations": self.saved_activations,
                       "peak_train": self.peak_train, "peak_eval": self.peak_eval,
                       "peak_train_at": self.peak_train_at},
            "assumptions": list(self.assumptions),
            "layers": [{"name": m.name, "memory": {"saved": m.saved, "params": m.params,
                                                    "grads": m.grads, "optimizer": m.optimizer}}
                       for m in self.layers],
        }


def at_batch(analysis: Analysis, batch: int | None) -> Analysis:
    """The same model analysed with every input's first dimension set to ``batch``."""
    batch = check_batch(batch)
    if batch is None or analysis.graph is None:
        return analysis
    shapes = [(batch,) + tuple(s[1:]) if s else s for s in analysis.input_shapes]
    if shapes == [tuple(s) for s in analysis.input_shapes]:
        return analysis
    again = analysis.graph.analyze(analysis.inputs.with_shapes(shapes), analysis.dtype)
    again.model, again.mode = analysis.model, analysis.mode
    again.saved_measure, again.saved_run = analysis.saved_measure, analysis.saved_run
    return again


# ------------------------------------------------------------------ values and storages
@dataclass(slots=True)
class _Value:
    storage: int
    shape: Shape
    dtype: str
    needs_grad: bool


def _bytes(shape: Shape, dtype: str) -> int:
    return prod(shape) * DTYPE_BYTES[dtype]


def estimate(analysis: Analysis, setup: Settings = Settings(),
             measure: SavedMeasure | None = None, device: str = "h100") -> MemoryReport:
    """The memory of one training step of ``analysis``'s model (see the module docstring)."""
    graph = analysis.graph
    nodes = graph.nodes if graph is not None else [None] * len(analysis.records)
    act = "bfloat16" if setup.amp else setup.dtype
    pbytes = DTYPE_BYTES[setup.param_dtype]
    line = Timeline()
    run = _recorded_run(analysis, setup)
    keys: dict[int, int] = {}  # a measured storage → its timeline storage

    def measured_store(key: int, nbytes: int) -> tuple[int, bool]:
        """The timeline storage of a measured one, and whether it is new here."""
        if key in keys:
            return keys[key], False
        keys[key] = line.storage(nbytes)
        return keys[key], True

    values: dict[str, _Value] = {}
    input_names = graph.input_names if graph is not None else ("input",)
    for name, shape, kind in zip(input_names, analysis.input_shapes, analysis.input_dtypes):
        kind = kind if kind not in TRAIN_DTYPES or setup.amp else setup.dtype
        seen = run.nodes.get(name) if run is not None else None
        store = (measured_store(seen.output, seen.output_bytes)[0] if seen is not None
                 else line.storage(_bytes(shape, kind)))
        values[name] = _Value(store, shape, kind, False)
    line.inputs = tuple(v.storage for v in values.values())

    layers: list[LayerMemory] = []
    largest_param = 0
    unknown: list[str] = []
    counted_params: set[str] = set()
    total_params = total_grads = 0
    step_tensors = 0
    step_known = True
    saved_known = True
    for i, rec in enumerate(analysis.records):
        node = nodes[i]
        ins = [values[n] for n in node.inputs] if node is not None else [values["input"]]
        layer = rec.layer
        frozen = node.frozen if node is not None else 0
        trainable = max(rec.params - frozen, 0)
        first_use = not rec.shared and (node is None or (node.param_key or node.name) not in counted_params)
        if node is not None:
            counted_params.add(node.param_key or node.name)
        params = rec.params * pbytes if first_use else 0
        grads = trainable * pbytes if first_use else 0
        tensors = _param_tensors(node, layer, rec) if first_use and trainable else 0
        if tensors is None:
            step_known = False
        optimizer = grads * setup.optimizer.copies + (
            tensors * setup.optimizer.step_bytes if tensors is not None else 0)
        if tensors is None and setup.optimizer.step_bytes:
            optimizer_known: int | None = None
        else:
            optimizer_known = optimizer
        total_params += params
        total_grads += grads
        step_tensors += tensors or 0
        largest_param = max(largest_param, grads)

        out_dtype = _output_dtype(layer, ins, act, setup)
        names = node.inputs if node is not None else ("input",)
        grad = Backward(tuple(v.needs_grad for v in ins), trainable > 0, setup.training,
                        setup.cuda, act, tuple(names.index(n) for n in names))
        needs = grad.active and out_dtype in TRAIN_DTYPES
        seen = run.nodes.get(rec.name) if run is not None else None
        rule = _rule(layer, grad, rec, measure, seen, setup)  # first: a measured op learns its view
        if seen is not None:  # the recorded run says which storage it is
            out_store, fresh = measured_store(seen.output, seen.output_bytes)
            view = not fresh
        else:
            view = layer is not None and ins and layer.output_is_view(setup.training)
            out_store = ins[0].storage if view else line.storage(_bytes(rec.output_shape, out_dtype))
        mine = [] if view else [out_store]
        out = _Value(out_store, rec.output_shape, out_dtype, needs)
        values[rec.name] = out

        kept_bytes: int | None = 0
        if rule is None:
            kept_bytes = None
            saved_known = False
            unknown.append(rec.name)
        else:
            for item in _autocast(rule, layer, ins, setup, rec):
                if isinstance(item, tuple):  # a measured storage
                    store, fresh = measured_store(*item)
                    if fresh:
                        mine.append(store)
                elif item.kept is Kept.INPUT:
                    store = ins[item.index].storage
                elif item.kept is Kept.OUTPUT:
                    store = out_store
                else:
                    store = line.storage(_bytes(item.shape, item.dtype or out_dtype))
                    mine.append(store)
                holders = line.keepers.setdefault(store, [])
                if not holders:
                    kept_bytes += line.sizes[store]
                if i not in holders:
                    holders.append(i)
        input_grads = tuple((v.storage, 0 if view and v.storage == out_store else _bytes(v.shape, v.dtype))
                            for v in {v.storage: v for v in ins}.values() if v.needs_grad)
        line.steps.append(Step(rec.name, tuple(mine), tuple(v.storage for v in ins), out_store,
                               input_grads, needs or grads > 0, grads))
        layers.append(LayerMemory(rec.name, kept_bytes, params, grads, optimizer_known,
                                  _bytes(rec.output_shape, out_dtype), out_dtype))

    if graph is not None and graph.loose_params:  # parameters no node owns: counted, tensors unknown
        loose = graph.loose_params - graph.loose_frozen
        total_params += graph.loose_params * pbytes
        total_grads += loose * pbytes
        step_known = step_known and not loose
    state = (total_grads * setup.optimizer.copies + step_tensors * setup.optimizer.step_bytes
             if step_known or not setup.optimizer.step_bytes else None)
    saved_total = sum(line.sizes[s] for s in line.keepers) if saved_known else None
    returned = (graph.outputs if graph is not None and graph.outputs
                else (("output", graph.output if graph else analysis.records[-1].name),))
    line.outputs = frozenset(values[n].storage for _, n in returned)
    peak_eval = total_params + line.inference_peak()
    peak_train, peak_at = (None, None)
    if saved_known and state is not None:
        peak_train, peak_at = line.training_peak(
            total_params + state, total_grads, step_transient(setup, total_grads, largest_param))
    return MemoryReport(tuple(layers), total_params, total_grads, state, saved_total, peak_train,
                        peak_eval, analysis.input_shape[0] if analysis.input_shape else 1,
                        setup.dtype, setup.optimizer, setup.amp,
                        "train" if setup.training else "eval", setup.cuda, peak_at,
                        tuple(unknown), assumptions(setup) + _model_assumptions(graph), device,
                        analysis)


def _param_tensors(node: Any, layer: Layer | None, rec: Record) -> int | None:
    if node is not None and node.param_tensors is not None:
        return node.param_tensors
    if layer is None or (node is not None and node.params is not None and node.params != rec.params):
        return None
    try:
        return layer.param_tensors(*rec.input_shapes)
    except Exception:  # a layer whose formula cannot count without more: unknown
        return None


def _output_dtype(layer: Layer | None, ins: list[_Value], act: str, setup: Settings) -> str:
    """Integer values stay integer through views (token ids reshaped); under autocast matrix
    products give bfloat16, the fp32-list layers float32, the rest their input's type."""
    first = ins[0].dtype if ins else act
    if layer is not None and ins and first not in TRAIN_DTYPES and layer.output_is_view(setup.training):
        return first
    if not setup.amp or layer is None:
        return act
    if layer.kind in _AUTOCAST_LOWER:
        return "bfloat16"
    if layer.type_name in _AUTOCAST_FP32:
        return "float32"
    floats = [v.dtype for v in ins if v.dtype in TRAIN_DTYPES]
    return "float32" if "float32" in floats else (floats[0] if floats else act)


def _recorded_run(analysis: Analysis, setup: Settings) -> MeasuredRun | None:
    if analysis.saved_run is None or analysis.graph is None or setup.amp:
        return None  # (the run is not an autocast run: its sizes are not autocast's)
    run = analysis.saved_run(analysis.inputs, setup)
    if run is None or any(rec.name not in run.nodes for rec in analysis.records):
        return None  # another graph than the one analysed: its storages say nothing here
    return run


def _rule(layer: Layer | None, grad: Backward, rec: Record, measure: SavedMeasure | None,
          seen: MeasuredNode | None = None, setup: Settings = Settings()
          ) -> tuple[Saved | tuple[int, int], ...] | None:
    """What the node keeps: its layer's rule, or what a recorded run measured (storages), or
    what ``measure`` measures for the layer alone; ``None``: unknown.

    A recorded run (never under autocast: it did not run in bfloat16) is a CPU run in the
    step's element type: it wins on a CPU, where it also sees what rules cannot (an
    embedding's positions sliced from a buffer are not an activation; a copy torch.matmul
    makes of a non-contiguous operand is). Its one difference from a CPU kernel: in
    bfloat16/float16 a layer norm's statistics come out float32 on meta, in the activation
    type on a CPU (+0.4 % on BERT, tests/test_memory_hf.py). On a GPU a layer's rule (dropout
    masks and norm statistics differ by device) comes first."""
    if layer is None:
        return None
    if not grad.active:
        return ()  # nothing wants a gradient: autograd records nothing, whatever the layer
    if seen is not None and not setup.cuda:
        return seen.saved
    rule = layer.saved(grad, rec.output_shape, *rec.input_shapes)
    if rule is None and seen is not None:
        return seen.saved
    if rule is None and measure is not None and grad.active:
        rule = measure(layer, grad, rec.output_shape, *rec.input_shapes)
    return rule


def _autocast(rule: tuple[Saved, ...], layer: Layer | None, ins: list[_Value], setup: Settings,
              rec: Record) -> tuple[Saved, ...]:
    """Under autocast a matrix product keeps bfloat16 copies: of a float32 input it casts, and
    of its float32 weights (cast once per forward)."""
    if not setup.amp or layer is None or layer.kind not in _AUTOCAST_LOWER:
        return rule  # (no recorded run under autocast: no measured storages here)
    out: list[Saved] = []
    for item in rule:
        if item.kept is Kept.INPUT and ins[item.index].dtype == "float32":
            out.append(Saved(Kept.NEW, 0, ins[item.index].shape, "bfloat16"))
        else:
            out.append(item)
    weights = rec.params - _bias(layer)
    if rule and weights > 0 and not rec.shared:
        out.append(Saved(Kept.NEW, 0, (weights,), "bfloat16"))
    return tuple(out)


def _bias(layer: Layer) -> int:
    """Bias elements of a convolution or linear layer: autocast casts them, backward never
    needs them, so they are not kept."""
    if not getattr(layer, "bias", False):
        return 0
    return getattr(layer, "out_channels", None) or getattr(layer, "out_features", 0)


def _model_assumptions(graph: Any) -> tuple[str, ...]:
    """What the model's own notes change in these figures (a mixture of experts' kernel)."""
    experts = [n for n in (graph.notes if graph is not None else ()) if n.kind is NoteKind.EXPERTS]
    if not experts:
        return ()
    note = experts[0]
    return (f"mixture of experts run with transformers' batched_mm kernel ({note.get('top_k')} "
            f"of {note.get('experts')} experts per token): each token's experts' weights are "
            "gathered and kept for backward, which transformers' default grouped_mm kernel "
            "does not keep; the saved activations and peaks are batched_mm's",)


# How a step runs lives in memory_setup; it is named here too, where callers look for it.
__all__ = ["LayerMemory", "MAX_BATCH", "MeasuredNode", "MeasuredRun", "MemoryReport", "Optimizer",
           "Settings", "TRAIN_DTYPES", "at_batch", "check_batch", "estimate", "settings"]
