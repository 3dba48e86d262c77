"""The fallback for a forward torch.fx cannot read: run it once and record its modules with hooks.

Whatever stops fx (data-dependent control flow, ``torch._assert`` on a traced size, a module
name that is not a Python identifier) the forward still runs: on the meta device at the
requested inputs (free), or once for real on zeros when it reads tensor values. Every module
torch defines (a ``Conv2d``, a ``MultiheadAttention``) and every module without children is
recorded as one node in call order, and so is every torch function the forward's own code
calls between them (``hook_recorder``: attention's products, a functional convolution), with
torch's count of its MACs; each parameter is counted once at the first module that holds it. Parameters no recorded module holds (a class
token used by the forward's own code) are named in a note and still counted.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

from shapecalc.core.errors import LayerError, SpecError
from shapecalc.core.graph import Graph, GraphBuilder, Mode
from shapecalc.core.inputs import Inputs
from shapecalc.core.layers import Shape, format_shape
from shapecalc.core.notes import Note, NoteKind
from shapecalc.torch_bridge import fx_ops
from shapecalc.torch_bridge.fx_common import blocks_for, labelled_leaves, module_to_layer
from shapecalc.torch_bridge.fx_params import ParamLedger, attribute, loose_notes
from shapecalc.torch_bridge.measure import MeasuredLayer, call_on_meta, meta_input, run_mode, torch_module

_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict")


def recorded_modules(module: Any) -> list[tuple[str, Any]]:
    """(path, module) of the units a hook run records: torch's own modules and childless ones."""
    out: list[tuple[str, Any]] = []
    inside = None  # the last recorded path + ".": named_modules lists its subtree next
    for path, sub in module.named_modules():
        if not path or (inside is not None and path.startswith(inside)):
            continue
        cls = type(sub)
        torch_own = cls.__module__.startswith("torch.nn") and cls.__name__ not in _CONTAINERS
        if torch_own or all(child is None for child in sub._modules.values()):
            out.append((path, sub))
            inside = path + "."
    return out


def input_names(module: Any, count: int) -> list[str]:
    """Names of the forward's tensor arguments (``x``, ``tokens``), for labelling the inputs."""
    forward = module.forward
    try:
        params = _positional_names(getattr(forward, "__func__", None) or forward,
                                   hasattr(forward, "__func__"))
    except TypeError:  # an unhashable callable
        params = _positional_names.__wrapped__(forward, False)
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]


@lru_cache(maxsize=1024)
def _positional_names(forward: Any, bound: bool) -> tuple[str, ...]:
    """The positional parameters of a forward, read once per function (``inspect.signature``
    costs 0.1 ms a call); ``bound``: the function of a bound method, whose ``self`` is dropped."""
    try:
        names = [p.name for p in inspect.signature(forward).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return ()
    return tuple(names[1:] if bound else names)


def hook_graph(module: Any, name: str, inputs: Inputs, training: bool = False,
               why: Note | None = None) -> Graph:
    """A flat graph of the modules and torch functions one forward at ``inputs`` ran, in call order.

    When torch refuses the input, the graph is cut at the module that was running and the
    engine is asked about it with the input it received, so the error carries the engine's
    numbers (and ``err.partial_graph`` lets ``diagnose`` explain it). ``why``, the note saying
    why the forward is recorded rather than traced, comes first among the graph's notes.
    """
    from shapecalc.core.errors import ShapeError
    from shapecalc.core.graph import analyze_graph
    from shapecalc.torch_bridge.hook_recorder import Recording
    from shapecalc.torch_bridge.measure import forward_error, torch_error

    failure: Exception | None = None
    given: list = []
    recorded = recorded_modules(module)
    layers = module_layers(recorded)
    recording = Recording(module, recorded, {key for key, layer in layers.items() if layer is None})
    try:
        with recording:
            xs, out = run_for_hooks(module, inputs, recording.clear, training, given,
                                    recording.observing)
    except SpecError:
        raise
    except Exception as err:  # the graph so far starts from every input torch was given
        failure, out, xs = err, None, given
    if failure is not None and recording.running() is None:
        # No recorded module was running: the forward's own code raised (a ``view`` that
        # does not fit, a ``raise ValueError``). Its exception is the answer, where it was raised.
        error = ShapeError(f"the forward raised {forward_error(failure)}", node=None)
        raise error from None
    graph, running = _hook_nodes(module, name, recording, layers, xs, out, failure is not None)
    if why is not None:
        graph.notes.insert(0, why)
    graph.mode = Mode.of_training(training)
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


@lru_cache(maxsize=4096)
def _fixed(label: str, op_type: str, shape: Shape | None, macs: int | None,
           note: str = "") -> MeasuredLayer:
    """A node whose shape and MACs were measured in the recorded run (``shape`` None: the
    module torch refused). Layers are frozen values: the 126 layers of a big transformer
    record the same few thousand calls, which share one checked layer each."""

    def runner(*_s: Shape) -> tuple[Shape, int | None]:
        if shape is None:
            from shapecalc.core.errors import ShapeError

            raise ShapeError("torch refused this input")
        return shape, macs

    return MeasuredLayer(label, op_type, 0, note, runner=runner)


def recorded_run(module: Any, name: str, run: Any) -> tuple[Graph, list, dict[str, Any]]:
    """``run()`` (returning the inputs and the output) recorded as :func:`hook_graph` records
    a forward, with what autograd saved during each call: the graph, the calls (``call.node``
    names the node each made, ``call.saved`` holds what it saved) and every node's tensor."""
    from shapecalc.torch_bridge.hook_recorder import Recording

    recorded = recorded_modules(module)
    recording = Recording(module, recorded, set(), saving=True)
    with recording, recording.observing():
        xs, out = run()
    values: dict[str, Any] = {}
    graph, _ = _hook_nodes(module, name, recording, module_layers(recorded), xs, out, False, values)
    return graph, recording.calls, values


def module_layers(recorded: list[tuple[str, Any]]) -> dict[int, Any]:
    """The engine's layer for each recorded module (``None``: none, torch measures it), by
    ``id``, read once per analysis. (No ``made`` cache: keying the arguments cost more than
    building the layer on the corpus's transformers, whose modules are mostly distinct.)"""
    return {id(m): module_to_layer(m) for _, m in recorded}


def _hook_nodes(module: Any, name: str, recording: Any, layers: dict[int, Any], xs: list,
                out: Any, failed: bool, values: dict | None = None) -> tuple[Graph, str | None]:
    """Nodes for the recorded calls: modules (``layers``: a rule where the engine has one,
    else torch's measurement) and the torch functions the forward's own code ran between
    them. ``values``, if given, receives every node's tensor by node name."""
    torch = torch_module()
    builder = GraphBuilder(name)
    labels = input_names(module, len(xs))
    produced: dict[int, str] = {}
    for i, x in enumerate(xs):
        produced[id(x)] = builder.input_name if i == 0 else builder.add_input(labels[i])
        if values is not None:
            values[produced[id(x)]] = x
    keep = list(xs)  # ids stay unique only while the tensors live
    counts: dict[str, int] = {}
    last = builder.input_name
    uses: dict[str, list] = {}
    ledger = ParamLedger(module)

    def unique(base: str) -> str:
        counts[base] = counts.get(base, 0) + 1
        return base if counts[base] == 1 else f"{base}#{counts[base]}"

    def glue(node_name: str, tensor: Any, source: str) -> str:
        # A module may read several tensors no recorded node made (CondConv's input and its
        # routing weights): each gets its own node, numbered like repeated calls.
        layer = _fixed(f"ops → {format_shape(tuple(tensor.shape))}", "Functional", tuple(tensor.shape), 0,
                       "shape measured between modules (forward not traceable by fx)")
        glued = builder.add(unique(node_name), layer, (source,))
        if values is not None:
            values[glued] = tensor
        return glued

    running = recording.running() if failed else None
    calls = recording.calls + ([running] if running is not None else [])
    for call in calls:
        items = _tensor_items(call.output, torch)
        if call.output is not None and not items:
            continue
        output = items[0][1] if items else None
        node_name = call.node = unique(call.path)
        if call.module is None:  # a torch function the forward's own code called
            sources = tuple(produced[id(t)] for t in call.inputs if id(t) in produced)
            layer = _function_layer(call, sources, output, torch) or \
                _fixed(call.label, call.label, tuple(output.shape), call.macs)
            # A parameter the forward's own code reads (a mixture of experts' stacked weights
            # indexed by the router's choice) is counted at the op that reads it first.
            reads = [getattr(t, "shapecalc_stands_for", id(t)) for t in call.inputs]
            if any(i in ledger.info for i in reads):
                uses[node_name] = [(reads, f"through {call.label}")]
        else:
            sources = tuple(produced.get(id(t)) or glue(f"{node_name}.input", t, last)
                            for t in call.inputs)
            layer = layers.get(id(call.module))
            if layer is None or (len(sources) != 1 and not _takes_all(layer, call.inputs)):
                layer = _fixed(type(call.module).__name__, type(call.module).__name__,
                               None if output is None else tuple(output.shape), call.macs)
            uses[node_name] = [(ledger.module_params(call.module), None)]
        builder.add(node_name, layer, sources or (last,), module=call.path if call.module is not None
                    else None, param_key=node_name)
        for i, (suffix, item) in enumerate(items):
            keep.append(item)
            if i == 0:
                produced[id(item)] = node_name
                if values is not None:
                    values[node_name] = item
                continue
            # Every further item of a tuple, list or dict a call returns is a row of its own.
            item_name = unique(f"{node_name}{suffix}")
            key = suffix[1:-1]
            note = Note.of(NoteKind.TUPLE_ITEM, index=int(key) if key.isdigit() else key,
                           owner=node_name)
            builder.add(item_name, _fixed(f"{call.label}{suffix}", "getitem", tuple(item.shape), 0),
                        (node_name,))
            builder.nodes[-1] = builder.nodes[-1].counted(0, 0, (note,), item_name)
            produced[id(item)] = item_name
            if values is not None:
                values[item_name] = item
        last = node_name
    if running is not None:
        _prune(builder, {last})
        graph = builder.finish(last)
    else:
        outputs = _output_nodes(out, produced, glue, last)
        _prune(builder, {node for _, node in outputs})
        graph = builder.finish(outputs[0][1])
        graph.outputs = tuple(outputs)
        if len(outputs) > 1 or not isinstance(out, torch.Tensor):
            graph.notes.append(Note.of(NoteKind.OUTPUTS, count=len(outputs),
                                       labels=tuple(label for label, _ in outputs)))
    graph.input_labels = tuple(labels)
    # The module tree the forward ran through: every module that is not itself a recorded
    # node becomes a block, so the table reads as a tree (12 BertLayer rows at --depth 2).
    leaves = {path for path, _ in recording.recorded}
    containers = {path: sub for path, sub in module.named_modules() if path and path not in leaves}
    graph.blocks = blocks_for(graph.nodes, containers, graph.output)
    graph.nodes = attribute(ledger, graph.nodes, uses)
    graph.loose_params, graph.loose_frozen, loose = loose_notes(ledger, unplaced=True)
    graph.notes.extend(loose)
    return graph, (last if running is not None else None)


def _takes_all(layer: Any, tensors: tuple) -> bool:
    """Whether a layer of several inputs (attention's query, key and value) describes a call
    given ``tensors``: a mask passed too is no input of the layer, so such a call is measured
    (as fx_convert does) rather than taken for a layer that would refuse it."""
    if layer.arity != 0:
        return False
    try:
        layer.output_shape(*(tuple(t.shape) for t in tensors))
    except LayerError:
        return False
    return True


def _function_layer(call: Any, sources: tuple, output: Any, torch: Any) -> Any:
    """The engine's layer for a recorded one-tensor call it has a rule for (``F.relu``,
    ``x.flatten(1)``), if that rule gives the shape torch gave; else ``None`` (measured)."""
    if len(sources) != 1 or len(call.inputs) != 1:
        return None
    layer = fx_ops.plain_call_layer(call.label, call.args, call.kwargs,
                                    lambda v: isinstance(v, torch.Tensor))
    if layer is None:
        return None
    try:
        same = layer.output_shape(tuple(call.inputs[0].shape)) == tuple(output.shape)
    except Exception:  # the rule refuses what torch took: torch's measurement stands
        return None
    return layer if same else None


def _prune(builder: GraphBuilder, kept: set[str]) -> None:
    """Drop function calls whose result nothing used and that did no counted work: the
    ``x.sum() > 0`` of a data-dependent branch, a shape computed with tensors. Every item of
    a call's tuple stays: the row says what the call returned."""
    used = set(kept)
    nodes = []
    for node in reversed(builder.nodes):
        if node.name in used or node.module is not None or node.notes or (
                isinstance(node.layer, MeasuredLayer) and node.layer.mac_count(()) != 0):
            used.update(node.inputs)
            nodes.append(node)
    builder.nodes = nodes[::-1]


def _tensor_items(value: Any, torch: Any) -> list[tuple[str, Any]]:
    """(label, tensor) for what a call returned: itself (label ``""``), or the tensor items of
    a tuple, list or dict (``[1]``, ``[logits]``). Nested state (an LSTM's ``(h, c)``) stays
    inside its module's row."""
    if isinstance(value, torch.Tensor):
        return [("", value)]
    if isinstance(value, dict):
        return [(f"[{k}]", v) for k, v in value.items() if isinstance(v, torch.Tensor)]
    if isinstance(value, (tuple, list)):
        return [(f"[{i}]", v) for i, v in enumerate(value) if isinstance(v, torch.Tensor)]
    return []


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


def _input_bytes(given: Inputs) -> int:
    from shapecalc.core.inputs import DTYPE_BYTES

    total = 0
    for item in given:
        count = 1
        for size in item.shape:
            count *= size
        total += count * DTYPE_BYTES[item.dtype]
    return total


def _refuse_a_large_real_run(given: Inputs) -> None:
    """A real run allocates its inputs and every activation: above ``MAX_RUN_BYTES`` of input
    it is refused, naming the flag that raises the limit, before anything is allocated."""
    from shapecalc.core.bounds import MAX_RUN_BYTES

    limit = MAX_RUN_BYTES.get()
    total = _input_bytes(given)
    if total > limit:
        shown = " and ".join("×".join(map(str, s)) for s in given.shapes)
        raise SpecError(f"the forward reads tensor values, so it must run for real on zeros; "
                        f"input {shown} is {total / 2**20:,.0f} MiB, more than the "
                        f"{limit / 2**20:,.0f} MiB allowed for a real run (--max-run-mb raises it)")


def run_for_hooks(module: Any, given: Inputs, reset: Any, training: bool = False,
                  inputs: list | None = None, observe: Any = None) -> tuple[list, Any]:
    """A small CPU model for real first (``real_run``), else meta (free); a forward that reads
    tensor values (``if x.sum() > 0``) cannot run on meta, so then it runs once for real on
    zeros, on the module's own device. ``inputs``, if
    given, holds the input tensors of the last run, even when torch refuses them.
    ``observe(mode)`` (a recording's :meth:`~.hook_recorder.Recording.observing`; by default
    the mode itself) is entered around each try with the one dispatch mode it runs under."""
    from shapecalc.torch_bridge.mac_count import math_attention

    from shapecalc.core.bounds import MAX_RUN_BYTES
    from shapecalc.torch_bridge.meta_memo import meta_memo
    from shapecalc.torch_bridge.real_run import (
        Unseen, cheaper_for_real, owned_tensors, real_run_guard, remember,
    )

    per_call = observe is not None  # a recording sees every call: the guard may wait for them
    observe = observe or (lambda mode: mode)
    torch = torch_module()
    key = (tuple(given.shapes), tuple(i.dtype for i in given), training, MAX_RUN_BYTES.get())
    with torch._C.DisableTorchFunction():  # the recording need not see shapecalc's own reads
        owned = owned_tensors(module)
        real_first = cheaper_for_real(module, _input_bytes(given), MAX_RUN_BYTES.get(), owned,
                                      key)
    while real_first:
        # A small model's real forward costs less than torch's Python meta kernels; where it
        # would write into the model's tensors, run long, or fails at all, meta answers.
        xs = [meta_input(i.shape, i.dtype, "cpu") for i in given]
        if inputs is not None:
            inputs[:] = xs
        with torch._C.DisableTorchFunction():
            guard = real_run_guard(module, MAX_RUN_BYTES.get(), owned=owned, per_call=per_call)
        try:
            # (grad mode and the attention backend set before the recording looks)
            with torch.no_grad(), math_attention(), guard.unchanged(), observe(guard), \
                    run_mode(module, training):
                return xs, module(*xs)
        except Unseen:  # watched again, every op: the work the recorder could not see counts
            per_call = False
            reset()
        except Exception as err:  # GaveUp, or anything torch refused: meta says it as before
            remember(module, err, key)
            reset()
            break
    xs = [meta_input(i.shape, i.dtype) for i in given]
    if inputs is not None:
        inputs[:] = xs
    try:
        with observe(meta_memo()):
            return xs, call_on_meta(module, *xs, training=training)
    except Exception as err:
        if "meta" not in str(err) and "data-dependent" not in str(err):
            raise
    reset()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    _refuse_a_large_real_run(given)
    xs = [meta_input(i.shape, i.dtype, device) for i in given]
    if inputs is not None:
        inputs[:] = xs
    with observe(meta_memo()), run_mode(module, training), torch.no_grad(), math_attention():
        return xs, module(*xs)  # (the memo keeps nothing of real tensors: it only hands on ops)
