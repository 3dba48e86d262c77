"""From a user's ``nn.Module`` to the engine's graph, so their own network gets the same table.

Three ways in, best first:

1. **chain**: ``nn.Sequential`` nestings of known layers map one module to one layer spec; the
   result is a spec tree (savable as a spec file) whose node names are the module paths.
2. **fx**: anything else is traced with ``torch.fx`` to recover the DAG: adds, concats, views,
   functional calls. Known modules and ops become derived layers; unknown ones are measured on
   the meta device (marked "measured") so that nothing fails silently.
3. **hooks**: a forward that fx cannot trace (data-dependent control flow) is run once on the
   meta device at the requested input size and its leaf modules recorded, with a note.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..model_source import ModelSource
from ..blocks import Block, Sequential
from ..errors import SpecError
from ..graph import Graph, GraphBuilder
from ..layers import Layer, Shape
from .fx_common import module_to_layer, param_count
from .fx_convert import FxConverter
from .measure import (
    MeasuredLayer, call_on_meta, meta_input, record_module_shapes, torch_module,
)


@dataclass
class TorchImport:
    """How a module was imported; ``torch_bridge.verify`` uses it to measure the same nodes."""

    module: Any
    mode: str  # "chain", "fx" or "hooks"
    gm: Any = None
    fx_names: dict[str, str] = field(default_factory=dict)  # engine node → fx node
    notes: list[str] = field(default_factory=list)
    name: str = ""  # the model's name: the graph's name when recorded again

    def graph_at(self, shape: Shape) -> Graph:
        """The graph at ``shape``; only "hooks" imports depend on the size (they are recorded)."""
        if self.mode != "hooks":
            raise SpecError(f"{self.name}: a {self.mode} import has one graph for every size")
        return hook_graph(self.module, self.name or type(self.module).__name__, shape)


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
def module_source(module: Any, name: str | None = None, source: str = "") -> ModelSource:
    """Import ``module`` (chain, else fx, else hooks) as a :class:`ModelSource`."""
    name = name or type(module).__name__
    default = _default_input(module)
    unique = (len(list(module.named_modules())) == len(list(module.named_modules(remove_duplicate=False)))
              and len(list(module.parameters())) == len(list(module.named_parameters(remove_duplicate=False))))
    spec = module_to_spec(module) if unique else None
    if isinstance(spec, Sequential):
        imp = TorchImport(module, "chain", name=name)
        return ModelSource(name, spec.to_graph(name), default, spec,
                           f"nn.Module {type(module).__name__} (a chain of known layers)",
                           source, torch_import=imp)
    try:
        graph, imp = trace_graph(module, name)
    except _Untraceable as err:
        reason = str(err)
        imp = TorchImport(module, "hooks", name=name, notes=[
            f"torch.fx could not trace {type(module).__name__}.forward ({reason}); its leaf modules "
            "were recorded in one run at the requested input size (on the meta device, or on zeros "
            "when the forward reads tensor values), so shapes between modules are measured"])
        graph = imp.graph_at(default) if default is not None else None
        return ModelSource(name, graph, default, None, imp.notes[0], source,
                           torch_import=imp, scannable=False)
    description = f"nn.Module {type(module).__name__} (traced with torch.fx)"
    return ModelSource(name, graph, default, None, description, source, torch_import=imp)


class _Untraceable(Exception):
    pass


# ------------------------------------------------------------------ fx
def _tracer_class():
    torch = torch_module()

    class KnownLeafTracer(torch.fx.Tracer):
        """Stops at modules the engine knows, wherever they are defined."""

        def is_leaf_module(self, m, qualname: str) -> bool:
            return module_to_layer(m) is not None or super().is_leaf_module(m, qualname)

    return KnownLeafTracer


def trace_graph(module: Any, name: str) -> tuple[Graph, TorchImport]:
    torch = torch_module()
    tracer = _tracer_class()()
    try:
        fx_graph = tracer.trace(module)
    except Exception as err:  # control flow on tensors, unsupported Python: use hooks instead
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise _Untraceable(first[:160]) from None
    gm = torch.fx.GraphModule(tracer.root, fx_graph, name)
    converter = FxConverter(gm, name, module)
    graph = converter.run()
    for path, info in graph.blocks.items():  # a block's value is its output node's
        if info.output in converter.fx_names:
            converter.fx_names[path] = converter.fx_names[info.output]
    imp = TorchImport(module, "fx", gm, converter.fx_names, converter.notes, name)
    return graph, imp


# ------------------------------------------------------------------ hooks (untraceable)
def hook_graph(module: Any, name: str, shape: Shape) -> Graph:
    """A flat graph of the leaf modules one forward at ``shape`` ran, in call order.

    When torch refuses the input, the graph is cut at the leaf that was running and the engine
    is asked about that leaf with the input it received, so the error carries the engine's
    numbers (and its ``partial_graph`` lets ``diagnose`` explain it).
    """
    from ..errors import LayerError, ShapeError
    from ..graph import analyze_graph
    from .measure import torch_error

    torch = torch_module()
    calls: list[tuple[str, Any, tuple, Any]] = []
    handles = []
    for path, sub in module.named_modules():
        if path and not any(True for _ in sub.children()):
            handles.append(sub.register_forward_pre_hook(
                lambda m, inp, path=path: calls.append((path, m, inp, None))))
            handles.append(sub.register_forward_hook(
                lambda m, inp, out, path=path: calls.append((path, m, inp, out))))
    failure = None
    try:
        x, out = _run_for_hooks(module, shape, calls.clear)
    except SpecError:
        raise
    except Exception as err:
        failure, out = err, None
        x = next((inp[0] for _, _, inp, _ in calls if inp and isinstance(inp[0], torch.Tensor)), None)
    finally:
        for h in handles:
            h.remove()
    graph, running = _hook_nodes(name, calls, x, out, failure is not None)
    if failure is None:
        return graph
    message = f"torch refused input {'×'.join(map(str, shape))}: {torch_error(failure)}"
    try:
        analyze_graph(graph, tuple(shape))
        error: LayerError = ShapeError(message, node=running or name)
    except LayerError as engine_error:  # the engine's own account of the failing leaf
        error = engine_error
    raise error.replace(partial_graph=graph) from None


def _hook_nodes(name: str, calls: list, x: Any, out: Any, failed: bool) -> tuple[Graph, str | None]:
    """Nodes for the recorded calls (pre-hook entries have ``out is None``)."""
    torch = torch_module()
    builder = GraphBuilder(name)
    produced = {id(x): builder.input_name} if x is not None else {}
    keep = [x]  # ids stay unique only while the tensors live
    counts: dict[str, int] = {}
    last = builder.input_name

    def glue(node_name: str, tensor: Any, source: str) -> str:
        fixed = tuple(tensor.shape)
        layer = MeasuredLayer(f"ops → {fixed}", "Functional", 0,
                              "shape measured between modules (forward not traceable by fx)",
                              runner=lambda *_s, fixed=fixed: (fixed, 0))
        return builder.add(node_name, layer, (source,), origin="measured")

    finished = [c for c in calls if c[3] is not None]
    started = [c for c in calls if c[3] is None]
    running = started[len(finished)] if failed and len(started) > len(finished) else None
    # The failing leaf's input is known from its pre-hook: it becomes the last node.
    for path, sub, inputs, output in finished + ([running] if running else []):
        if output is not None and not isinstance(output, torch.Tensor):
            continue
        counts[path] = counts.get(path, 0) + 1
        node_name = path if counts[path] == 1 else f"{path}#{counts[path]}"
        sources = []
        for t in inputs:
            if not isinstance(t, torch.Tensor):
                continue
            src = produced.get(id(t))
            if src is None:
                src = glue(f"{node_name}.input", t, last)
            sources.append(src)
        layer = module_to_layer(sub)
        origin = "derived"
        if layer is None or len(sources) != 1:
            fixed = tuple(output.shape) if output is not None else None

            def runner(*_s: Shape, fixed=fixed) -> tuple[Shape, int]:
                if fixed is None:
                    from ..errors import ShapeError

                    raise ShapeError("torch refused this input")
                return fixed, 0

            layer = MeasuredLayer(type(sub).__name__, type(sub).__name__, param_count(sub), runner=runner)
            origin = "measured"
        builder.add(node_name, layer, tuple(sources) or (last,), module=path, param_key=path,
                    origin=origin)
        if output is not None:
            produced[id(output)] = node_name
            keep.append(output)
        last = node_name
    if running is not None:
        return builder.finish(last), last
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    final = produced.get(id(out))
    if final is None:
        final = glue("output", out, last)
    return builder.finish(final), None


def _run_for_hooks(module: Any, shape: Shape, reset: Any) -> tuple[Any, Any]:
    """Meta first (free); a forward that reads tensor values (``if x.sum() > 0``) cannot run
    on meta, so it runs once for real on zeros, on the module's own device, in eval mode."""
    torch = torch_module()
    x = meta_input(shape)
    try:
        return x, call_on_meta(module, x)
    except Exception as err:
        if "meta" not in str(err) and "data-dependent" not in str(err):
            raise
    reset()
    from .measure import eval_mode

    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    x = torch.zeros(tuple(shape), device=device)
    with eval_mode(module), torch.no_grad():
        return x, module(x)


# ------------------------------------------------------------------ verify support
def measure_nodes(imp: TorchImport, shape: Shape) -> dict[str, Shape]:
    """What torch says every engine node's output shape is, from one meta forward."""
    if imp.mode == "hooks":
        def run(module: Any, input_shape: Shape, reset: Any) -> Any:
            return _run_for_hooks(module, input_shape, reset)[1]

        return record_module_shapes(imp.module, shape, run)
    if imp.mode != "fx":
        return record_module_shapes(imp.module, shape)
    torch = torch_module()
    recorded: dict[str, Shape] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and n.op != "get_attr":
                recorded[n.name] = tuple(out.shape)
            return out

    class Runner(torch.nn.Module):
        def __init__(self, gm):
            super().__init__()
            self.gm = gm

        def forward(self, x):
            return Recorder(self.gm).run(x)

    out = call_on_meta(Runner(imp.gm), meta_input(shape))
    shapes = {engine: recorded[fx] for engine, fx in imp.fx_names.items() if fx in recorded}
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    shapes[""] = tuple(out.shape)
    return shapes
