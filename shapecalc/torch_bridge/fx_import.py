"""From a user's ``nn.Module`` to the engine's graph, so their own network gets the same table.

Three ways in, best first:

1. **chain**: ``nn.Sequential`` nestings of known layers map one module to one layer spec; the
   result is a spec tree (savable as a spec file) whose node names are the module paths.
2. **fx**: anything else is traced with ``torch.fx`` to recover the DAG: adds, concats, views,
   functional calls (``fx_convert``). Known modules and ops become derived layers; unknown ones
   are measured on the meta device (marked "measured") so that nothing fails silently.
3. **hooks** (``fx_hooks``): whenever fx fails (at tracing, at conversion, or when the traced
   graph cannot take an input that the real forward takes), or is known not to work (a
   transformers 5 model, :func:`untraceable_library_model`), the forward is run once at the
   requested inputs and its modules recorded, with a note saying so and why.

Models are read in eval mode (as torchinfo does; ``mode="train"`` for training-only branches)
and every flag is restored afterwards. Whatever the route, each distinct parameter is counted
once (``fx_params``), so ``total_params`` equals ``sum(p.numel())`` of the distinct parameters.
"""

from __future__ import annotations

import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable

from shapecalc.core.collector import paused_collector
from shapecalc.core.blocks import Block, Sequential
from shapecalc.core.errors import LayerError, ShapecalcError, SpecError, user_code
from shapecalc.core.graph import Analysis, Graph, Mode, analyze_graph
from shapecalc.core.inputs import Inputs
from shapecalc.core.layers import Layer, Shape
from shapecalc.core.notes import Note, NoteKind
from shapecalc.core.safetext import clipped
from shapecalc.torch_bridge.fx_common import ModuleIndex, module_to_layer
from shapecalc.torch_bridge.fx_forwards import recorded_forwards
from shapecalc.torch_bridge.fx_tracer import tracer_class
from shapecalc.torch_bridge.measure import (
    call_on_meta, meta_input, record_module_shapes, run_mode, torch_module, user_line,
)

class Route(StrEnum):
    """How a module was read (see the module docstring)."""

    CHAIN = "chain"
    FX = "fx"
    HOOKS = "hooks"


@dataclass
class TorchImport:
    """What importing an ``nn.Module`` gives: its graph and how it was read (the models layer
    wraps it as a :class:`~shapecalc.models.model_source.ModelSource`); ``verify`` uses it to
    measure the same nodes."""

    module: Any
    route: Route
    fx_graph: Any = None  # the traced torch.fx Graph; its targets are paths in ``module``
    fx_names: dict[str, str] = field(default_factory=dict)  # engine node → fx node
    notes: list = field(default_factory=list)
    converter: Any = None  # the FxConverter (element types for measured nodes)
    training: bool = False  # traced in train mode (``--train-mode``)
    why: Note | None = None  # why the forward is recorded with hooks (its first note there)
    name: str = ""  # the model's name: the graph's name when recorded again
    #: The graph read; ``None`` only for a hooks import with no default input to record it at.
    graph: Graph | None = None
    spec: Block | None = None  # a chain's spec tree
    default_input: Shape | None = None  # the module's own ``input_shape`` attribute
    description: str = ""
    #: Notes about the model itself (how a mixture of experts is counted), on every graph read.
    model_notes: tuple = ()
    #: Measured fx nodes need every value's element type even for float inputs (a bool mask
    #: built in the forward): found when they failed without it, kept for later analyses.
    typed_values: bool = False
    #: Functions traced as one call each (:func:`_failed_in_notrace_function`): a trace again
    #: (``source_line``) must wrap them too to make the same nodes.
    wrapped: tuple = ()

    @property
    def reason(self) -> str | None:
        """Why fx was not used (hooks), in words."""
        return None if self.why is None else self.why.get("reason")

    @property
    def scannable(self) -> bool:
        """False for a graph recorded by running the forward at one size (other sizes, other graphs)."""
        return self.route is not Route.HOOKS

    def graph_at(self, shape: Shape) -> Graph:
        """The graph at ``shape``; only "hooks" imports depend on the size (they are recorded)."""
        if self.route is not Route.HOOKS:
            raise SpecError(f"{self.name}: a {self.route} import has one graph for every size")
        return self.recorded(Inputs.from_checked([tuple(shape)]), self.training, self.why)

    def recorded(self, inputs: Inputs, training: bool, why: Note | None) -> Graph:
        """The graph one recorded run at ``inputs`` gives, with the model's own notes."""
        from shapecalc.torch_bridge.fx_hooks import hook_graph

        graph = hook_graph(self.module, self.name or type(self.module).__name__, inputs,
                           training, why)
        graph.notes.extend(self.model_notes)
        return graph


# ------------------------------------------------------------------ modules → layers
def module_to_spec(module: Any) -> Block | Layer | None:
    """A spec tree for a plain ``nn.Sequential`` chain of known layers, else ``None``."""
    cls = type(module)
    if cls.__name__ == "Sequential" and cls.__module__ == "torch.nn.modules.container":
        children: OrderedDict[str, Any] = OrderedDict()
        for name, child in module._modules.items():
            if child is None:
                return None
            spec = module_to_spec(child)
            if spec is None:
                return None
            children[name] = spec
        return Sequential(children) if children else None
    return module_to_layer(module)


def _default_input(module: Any) -> Shape | None:
    """A module may say what it expects with an ``input_shape`` attribute (tuple of ints)."""
    shape = getattr(module, "input_shape", None)
    if isinstance(shape, (tuple, list)) and 2 <= len(shape) <= 5 and all(
            isinstance(v, int) and v > 0 for v in shape):
        return tuple(shape)
    return None


# ------------------------------------------------------------------ entry point
@paused_collector()
def import_module(module: Any, name: str | None = None, mode: Mode | str = Mode.EVAL) -> TorchImport:
    """Import ``module`` (chain, else fx, else hooks) with its graph."""
    mode = Mode.of(mode)
    training = mode.training
    name = name or type(module).__name__
    default = _default_input(module)
    untraceable = untraceable_library_model(module)
    if untraceable is not None:  # (no chain either: a library model is no known layer)
        return hooks_import(module, name, default, hook_note(module, untraceable, tried=False), training)
    index = ModuleIndex.of(module)
    spec = module_to_spec(module) if index.shares_nothing else None
    if isinstance(spec, Sequential):
        graph = spec.to_graph(name)
        _attribute_chain(graph, module)
        graph.mode = mode
        return TorchImport(module, Route.CHAIN, training=training, name=name, graph=graph, spec=spec,
                           default_input=default,
                           description=f"nn.Module {type(module).__name__} (a chain of known layers)")
    try:
        _, imp = trace_graph(module, name, training, index)
    except _Untraceable as err:
        return hooks_import(module, name, default, hook_note(module, str(err)), training)
    imp.default_input = default
    imp.description = f"nn.Module {type(module).__name__} (traced with torch.fx)"
    return imp


def hook_note(module: Any, reason: str, tried: bool = True) -> Note:
    """Why ``module`` is recorded with hooks: torch.fx failed (``tried``), or was not tried."""
    return Note.of(NoteKind.HOOK_FALLBACK, model=type(module).__name__, reason=reason, tried=tried)


def untraceable_library_model(module: Any) -> str | None:
    """Why torch.fx need not be tried on this module tree, or ``None`` to try it.

    transformers 5 dropped its own fx tracer (transformers 4's ``HFTracer``, which gave every
    proxy a concrete shape and dtype), and its models' forwards read ``**kwargs`` through
    decorators, branch on tensors and unpack shapes: of the 23 architectures tried with
    transformers 5 (BERT, GPT-2, Llama, T5, BART, ViT, ConvNeXt, Whisper, Wav2Vec2, ResNet,
    Swin, Segformer, …) none traces, and the failed attempt cost up to as much as the whole
    recorded run. So a tree holding a transformers >= 5 ``PreTrainedModel`` goes to hooks at
    once; the recorded run gives the same figures fx would (the corpus checks them against
    torch). transformers is never imported here: a model of it exists only once it is. Asked
    first, as the root is usually the model itself: one ``isinstance``, no walk of the tree.
    """
    modeling = sys.modules.get("transformers.modeling_utils")
    library = sys.modules.get("transformers")
    pretrained = getattr(modeling, "PreTrainedModel", None)
    version = getattr(library, "__version__", "")
    major = re.match(r"\d+", version)
    if not isinstance(pretrained, type) or major is None or int(major.group()) < 5:
        return None
    for path, sub in module.named_modules():
        if isinstance(sub, pretrained):
            where = f" at '{path}'" if path else ""
            return (f"it runs a transformers {major.group()} model ({type(sub).__name__}{where}); "
                    "transformers 5 models do not trace: their forwards branch on tensors and "
                    "read **kwargs")
    return None


def hooks_import(module: Any, name: str, default: Shape | None, why: Note,
                 training: bool) -> TorchImport:
    """An import whose graph is recorded with hooks at each input asked for (not scannable)."""
    imp = TorchImport(module, Route.HOOKS, notes=[why], training=training, why=why, name=name,
                      default_input=default, description=str(why))
    imp.graph = imp.graph_at(default) if default is not None else None
    return imp


def _attribute_chain(graph: Graph, module: Any) -> None:
    """Frozen counts (and exact totals) for a chain: node names are the module paths."""
    from shapecalc.torch_bridge.fx_params import ParamLedger, attribute, loose_notes

    ledger = ParamLedger(module)
    uses = {n.name: [(ledger.module_params(module.get_submodule(n.name)), None)] for n in graph.nodes}
    graph.nodes = attribute(ledger, graph.nodes, uses)
    graph.loose_params, graph.loose_frozen, graph.notes = loose_notes(ledger)


class _Untraceable(Exception):
    pass


# ------------------------------------------------------------------ fx
#: Most functions a trace wraps after failing in them (each costs a trace up to the failure).
MAX_WRAPPED = 4


def _failed_in_notrace_function(err: BaseException) -> Callable | None:
    """The outermost function that timm registers as not traceable (``register_notrace_function``:
    a resize, a window partition, a mask built in Python) inside which a trace failed, if any.

    Such a function is then traced as one call, a measured node. Only where the trace failed
    inside it: one that traces keeps its ops as rows. Modules timm registers are not taken:
    many are whole blocks, whose rows one measured row would replace. timm is not imported
    here; its registry is read only if it is loaded.
    """
    registry = sys.modules.get("timm.layers._fx")
    if registry is None:
        return None
    codes = {getattr(f, "__code__", None): f for f in registry.get_notrace_functions()}
    tb = err.__traceback__
    while tb is not None:
        fn = codes.get(tb.tb_frame.f_code)
        if fn is not None:
            return fn
        tb = tb.tb_next
    return None


def trace_graph(module: Any, name: str, training: bool = False,
                index: ModuleIndex | None = None) -> tuple[Graph, TorchImport]:
    """fx trace and conversion; any failure at all becomes :class:`_Untraceable` (→ hooks).

    The traced Graph is read as it is: no ``GraphModule`` is built, because its Python code
    generation cost as much as the trace itself on deep models, and nothing here runs that
    code (measurements interpret the graph node by node). Each module's layer is decided once,
    before tracing, and the converter reuses it.
    """
    from shapecalc.torch_bridge.fx_convert import FxConverter

    index = index or ModuleIndex.of(module)
    made: dict = {}
    layers: dict[int, Layer | None] = {}
    for m in index.modules.values():
        if id(m) not in layers:
            layers[id(m)] = module_to_layer(m, made)
    known = {key for key, layer in layers.items() if layer is not None}
    wrapped: tuple = ()
    while True:
        try:
            with run_mode(module, training, index.unique):
                tracer = tracer_class(known, recorded_forwards(index.unique, training), index)(wrapped)
                fx_graph = tracer.trace(module)
            converter = FxConverter(fx_graph, tracer.root, name, layers, index, tracer.returned)
            graph = converter.run()
            break
        except Exception as err:  # control flow on tensors, an op fx cannot express
            inside = _failed_in_notrace_function(err)
            if inside is None or inside in wrapped or len(wrapped) >= MAX_WRAPPED:
                first = (str(err).strip().splitlines() or [""])[0]
                raise _Untraceable(clipped(f"{type(err).__name__}: {first}", 200)) from None
            wrapped += (inside,)
    for path, info in graph.blocks.items():  # a block's value is its output node's
        if info.output in converter.fx_names:
            converter.fx_names[path] = converter.fx_names[info.output]
    graph.mode = Mode.of_training(training)
    imp = TorchImport(module, Route.FX, fx_graph, converter.fx_names, converter.notes, converter, training,
                      name=name, graph=graph, wrapped=wrapped)
    return graph, imp


_FRAME = re.compile(r'^\s*File "(.+)", line (\d+), in ', re.M)


def source_line(imp: TorchImport, node: str) -> str | None:
    """``net.py:14``: the line of the forward that made engine node ``node`` (fx imports only).

    fx records where each node was made only when asked to, at a cost on every node of every
    trace; so the module is traced again with that record, for the one node a diagnosis names.
    """
    fx_name = imp.fx_names.get(node)
    if imp.route is not Route.FX or fx_name is None:
        return None
    index = ModuleIndex.of(imp.module)
    known = {id(m) for m in index.unique if module_to_layer(m, {}) is not None}
    try:
        with run_mode(imp.module, imp.training, index.unique):  # the same nodes, the same names
            tracer = tracer_class(known, recorded_forwards(index.unique, imp.training), index)(imp.wrapped)
            tracer.record_stack_traces = True
            traced = tracer.trace(imp.module)
    except Exception:  # it traced once; should a second trace fail, the line is not known
        return None
    for fx_node in traced.nodes:
        if fx_node.name == fx_name and fx_node.stack_trace:
            frames = [(f, int(n)) for f, n in _FRAME.findall(fx_node.stack_trace)]
            return user_line(frames)
    return None


# ------------------------------------------------------------------ analysis
def in_mode(imp: TorchImport, mode: Mode | str) -> TorchImport:
    """``imp``, or the module imported again when another mode is asked for (a train-mode
    forward may take other branches, so its graph is another one)."""
    mode = Mode.of(mode)
    if imp.training == mode.training:
        return imp
    again = import_module(imp.module, imp.name, mode)
    again.model_notes = imp.model_notes
    return again


@paused_collector()
def analyze_import(imp: TorchImport, inputs: Inputs, dtype: str = "float32",
                   mode: Mode | str = Mode.EVAL) -> Analysis:
    """Analyse an imported module at ``inputs``, re-importing it if another mode is asked for.

    A traced graph that cannot take inputs which the real forward takes was read wrongly
    by fx: the analysis then falls back to hooks, saying so, instead of reporting a shape
    error the model does not have.
    """
    imp = in_mode(imp, mode)
    training = imp.training
    if imp.route is Route.HOOKS:
        with user_code(f"running {imp.name}.forward"):
            graph = imp.recorded(inputs, training, imp.why)
        return analyze_graph(graph, inputs, dtype)
    if imp.route is Route.FX:
        typed = imp.typed_values or not inputs.all_default
        imp.converter.set_dtypes(_fx_dtypes(imp, inputs) if typed else {})
    try:
        return analyze_graph(imp.graph, inputs, dtype)
    except LayerError as err:
        if imp.route is Route.FX and not imp.typed_values and inputs.all_default:
            # Measured nodes took every value for float32; a mask the forward builds is not.
            imp.converter.set_dtypes(_fx_dtypes(imp, inputs))
            try:
                result = analyze_graph(imp.graph, inputs, dtype)
                imp.typed_values = True
                return result
            except LayerError:
                pass
        with user_code(f"running {imp.name}.forward"):
            reason = clipped(f"the traced graph fails where torch does not: {err}", 200)
            try:  # one recorded run: if torch refuses these inputs too, the error is real
                graph = imp.recorded(inputs, training, hook_note(imp.module, reason))
            except ShapecalcError:
                raise err from None
        return analyze_graph(graph, inputs, dtype)


def _fx_dtypes(imp: TorchImport, inputs: Inputs) -> dict[str, Any]:
    """Element type of every fx value at these inputs (one meta run through the fx graph)."""
    torch = torch_module()
    found: dict[str, Any] = {}

    def note_dtype(n: Any, out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            found[n.name] = out.dtype
        return out

    xs = [meta_input(i.shape, i.dtype) for i in inputs]
    try:
        call_on_meta(fx_runner(imp, note_dtype), *xs, training=imp.training)
    except Exception:  # measuring then says what torch refuses, node by node
        pass
    return found


def fx_runner(imp: TorchImport, on_node: Callable[[Any, Any], Any],
              on_start: Callable[[Any], None] | None = None) -> Any:
    """The traced graph run node by node, wrapped as a module (so weights become meta):
    ``on_start(fx_node)`` is told before a node runs (what autograd saves meanwhile is its),
    ``on_node(fx_node, output)`` sees its output and returns what the graph goes on with (the
    output itself, or a stand-in for it)."""
    torch = torch_module()

    class Watched(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            if on_start is not None:
                on_start(n)
            return on_node(n, super().run_node(n))

    class Runner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.traced = imp.module

        def forward(self, *xs):
            return Watched(self.traced, graph=imp.fx_graph).run(*xs)

    return Runner()


# ------------------------------------------------------------------ verify support
def measure_nodes(imp: TorchImport, inputs: Inputs) -> dict[str, Shape]:
    """What torch says every engine node's output shape is, from one meta forward."""
    if imp.route is Route.HOOKS:
        from shapecalc.torch_bridge.fx_hooks import run_for_hooks

        def run(module: Any, _shape: Shape, reset: Any) -> Any:
            return run_for_hooks(module, inputs, reset, imp.training)[1]

        return record_module_shapes(imp.module, inputs.first, run)
    if imp.route is not Route.FX:
        return record_module_shapes(imp.module, inputs.first)
    torch = torch_module()
    recorded: dict[str, Shape] = {}

    def note_shape(n: Any, out: Any) -> Any:
        if isinstance(out, torch.Tensor) and n.op != "get_attr":
            recorded[n.name] = tuple(out.shape)
        return out

    out = call_on_meta(fx_runner(imp, note_shape), *(meta_input(i.shape, i.dtype) for i in inputs),
                       training=imp.training)
    shapes_of = {engine: recorded[fx] for engine, fx in imp.fx_names.items() if fx in recorded}
    first = first_tensor(out)
    if first is not None:
        shapes_of[""] = tuple(first.shape)
    return shapes_of


def first_tensor(value: Any) -> Any:
    """The first tensor in a forward's result (a tensor, or nested tuples/lists/dicts)."""
    torch = torch_module()
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    for v in items:
        found = first_tensor(v)
        if found is not None:
            return found
    return None
