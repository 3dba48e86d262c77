"""The fallback for a forward torch.fx cannot read: run it once and record its modules with hooks.

Whatever stops fx (data-dependent control flow, ``torch._assert`` on a traced size, a module
name that is not a Python identifier) the forward still runs: on the meta device at the
requested inputs (free), or once for real on zeros when it reads tensor values. Every module
torch defines (a ``Conv2d``, a ``MultiheadAttention``) and every module without children is
recorded as one node in call order; shapes between them are measured, and each parameter is
counted once at the first module that holds it. Parameters no recorded module holds (a class
token used by the forward's own code) are named in a note and still counted.
"""

from __future__ import annotations

import inspect
from typing import Any

from shapecalc.core.errors import SpecError
from shapecalc.core.graph import Graph, GraphBuilder
from shapecalc.core.inputs import Inputs
from shapecalc.core.layers import Shape
from shapecalc.core.notes import Note, NoteKind
from shapecalc.torch_bridge.fx_common import labelled_leaves, module_to_layer
from shapecalc.torch_bridge.fx_params import ParamLedger, attribute, loose_notes
from shapecalc.torch_bridge.measure import MeasuredLayer, call_on_meta, meta_input, run_mode, torch_module

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")


def recorded_modules(module: Any) -> list[tuple[str, Any]]:
    """(path, module) of the units a hook run records: torch's own modules and childless ones."""
    out: list[tuple[str, Any]] = []
    inside: list[str] = []
    for path, sub in module.named_modules():
        if not path or any(path.startswith(p + ".") for p in inside[-1:]):
            continue
        torch_own = type(sub).__module__.startswith("torch.nn") and \
            type(sub).__name__ not in _CONTAINERS
        if torch_own or not any(True for _ in sub.children()):
            out.append((path, sub))
            inside.append(path)
    return out


def input_names(module: Any, count: int) -> list[str]:
    """Names of the forward's tensor arguments (``x``, ``tokens``), for labelling the inputs."""
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]


def hook_graph(module: Any, name: str, inputs: Inputs, training: bool = False,
               reason: str | None = None) -> Graph:
    """A flat graph of the modules one forward at ``inputs`` ran, in call order.

    When torch refuses the input, the graph is cut at the module that was running and the
    engine is asked about it with the input it received, so the error carries the engine's
    numbers (and ``err.partial_graph`` lets ``diagnose`` explain it).
    """
    from shapecalc.core.errors import ShapeError
    from shapecalc.core.graph import analyze_graph
    from shapecalc.torch_bridge.measure import forward_error, torch_error

    calls: list[tuple[str, Any, tuple, Any]] = []
    handles = []
    for path, sub in recorded_modules(module):
        handles.append(sub.register_forward_pre_hook(
            lambda m, inp, path=path: calls.append((path, m, inp, None))))
        handles.append(sub.register_forward_hook(
            lambda m, inp, out, path=path: calls.append((path, m, inp, out))))
    failure: Exception | None = None
    given: list = []
    try:
        xs, out = run_for_hooks(module, inputs, calls.clear, training, given)
    except SpecError:
        raise
    except Exception as err:  # the graph so far starts from every input torch was given
        failure, out, xs = err, None, given
    finally:
        for h in handles:
            h.remove()
    finished = sum(c[3] is not None for c in calls)
    if failure is not None and len(calls) == 2 * finished:
        # No recorded module was running: the forward's own code raised (a ``view`` that
        # does not fit, a ``raise ValueError``). Its exception is the answer, where it was raised.
        error = ShapeError(f"the forward raised {forward_error(failure)}", node=None)
        raise error from None
    graph, running = _hook_nodes(module, name, calls, xs, out, failure is not None)
    if reason is not None:
        graph.notes.insert(0, Note.of(NoteKind.HOOK_FALLBACK, model=type(module).__name__,
                                      reason=reason))
    graph.mode = "train" if training else "eval"
    if failure is None:
        return graph
    shown = " and ".join("×".join(map(str, s)) for s in inputs.shapes)
    message = f"torch refused input {shown}: {torch_error(failure)}"
    try:
        analyze_graph(graph, inputs if len(graph.input_names) > 1 else inputs.first)
        error = ShapeError(message, node=running or name)
    except ShapeError as engine_error:  # the engine's own account of the failing module
        error = engine_error
    except SpecError:
        error = ShapeError(message, node=running or name)
    error.partial_graph = graph  # type: ignore[attr-defined]
    raise error


def _hook_nodes(module: Any, name: str, calls: list, xs: list, out: Any,
                failed: bool) -> tuple[Graph, str | None]:
    """Nodes for the recorded calls (pre-hook entries have ``out is None``)."""
    torch = torch_module()
    builder = GraphBuilder(name)
    labels = input_names(module, len(xs))
    produced: dict[int, str] = {}
    for i, x in enumerate(xs):
        produced[id(x)] = builder.input_name if i == 0 else builder.add_input(labels[i])
    keep = list(xs)  # ids stay unique only while the tensors live
    counts: dict[str, int] = {}
    last = builder.input_name
    uses: dict[str, list] = {}
    ledger = ParamLedger(module)

    def glue(node_name: str, tensor: Any, source: str) -> str:
        # A module may read several tensors no recorded node made (CondConv's input and its
        # routing weights): each gets its own node, numbered like repeated calls.
        taken = counts.get(node_name, 0) + 1
        counts[node_name] = taken
        node_name = node_name if taken == 1 else f"{node_name}#{taken}"
        fixed = tuple(tensor.shape)
        layer = MeasuredLayer(f"ops → {fixed}", "Functional", 0,
                              "shape measured between modules (forward not traceable by fx)",
                              runner=lambda *_s, fixed=fixed: (fixed, 0))
        return builder.add(node_name, layer, (source,), origin="measured")

    finished = [c for c in calls if c[3] is not None]
    started = [c for c in calls if c[3] is None]
    running = started[len(finished)] if failed and len(started) > len(finished) else None
    # The failing module's input is known from its pre-hook: it becomes the last node.
    for path, sub, inputs, output in finished + ([running] if running else []):
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            output = output[0]  # an LSTM's (out, (h, c)), attention's (out, weights): one node
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
        if layer is None or (len(sources) != 1 and layer.arity != 0):
            fixed = tuple(output.shape) if output is not None else None

            def runner(*_s: Shape, fixed=fixed) -> tuple[Shape, int]:
                if fixed is None:
                    from shapecalc.core.errors import ShapeError

                    raise ShapeError("torch refused this input")
                return fixed, 0

            layer = MeasuredLayer(type(sub).__name__, type(sub).__name__, 0, runner=runner)
            origin = "measured"
        builder.add(node_name, layer, tuple(sources) or (last,), module=path, param_key=node_name,
                    origin=origin)
        uses[node_name] = [(ledger.module_params(sub), None)]
        if output is not None:
            produced[id(output)] = node_name
            keep.append(output)
        last = node_name
    if running is not None:
        graph = builder.finish(last)
    else:
        outputs = _output_nodes(out, produced, glue, last)
        graph = builder.finish(outputs[0][1])
        graph.outputs = tuple(outputs)
        if len(outputs) > 1 or not isinstance(out, torch.Tensor):
            graph.notes.append(Note.of(NoteKind.OUTPUTS, count=len(outputs),
                                       labels=tuple(label for label, _ in outputs)))
    graph.input_labels = tuple(labels)
    graph.nodes = attribute(ledger, graph.nodes, uses)
    graph.loose_params, graph.loose_frozen, loose = loose_notes(ledger, unplaced=True)
    graph.notes.extend(loose)
    return graph, (last if running is not None else None)


def _output_nodes(out: Any, produced: dict[int, str], glue: Any, last: str) -> list[tuple[str, str]]:
    """Every tensor the forward returned, labelled like the fx path does (dict keys, indices)."""
    torch = torch_module()
    found: list[tuple[str, str]] = []
    for label, leaf in labelled_leaves(out):
        if isinstance(leaf, torch.Tensor):
            node = produced.get(id(leaf))
            if node is None:
                node = glue("output" if not found else f"output_{len(found)}", leaf, last)
            found.append((label or "output", node))
    if not found:
        raise SpecError("the forward does not return a tensor")
    return found


def run_for_hooks(module: Any, given: Inputs, reset: Any, training: bool = False,
                  inputs: list | None = None) -> tuple[list, Any]:
    """Meta first (free); a forward that reads tensor values (``if x.sum() > 0``) cannot run
    on meta, so it runs once for real on zeros, on the module's own device. ``inputs``, if
    given, holds the input tensors of the last run, even when torch refuses them."""
    torch = torch_module()
    xs = [meta_input(i.shape, i.dtype) for i in given]
    if inputs is not None:
        inputs[:] = xs
    try:
        return xs, call_on_meta(module, *xs, training=training)
    except Exception as err:
        if "meta" not in str(err) and "data-dependent" not in str(err):
            raise
    reset()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    xs = [meta_input(i.shape, i.dtype, device) for i in given]
    if inputs is not None:
        inputs[:] = xs
    with run_mode(module, training), torch.no_grad():
        return xs, module(*xs)
