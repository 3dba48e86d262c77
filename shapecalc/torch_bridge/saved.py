"""What autograd saves for backward, seen through ``torch.autograd.graph.saved_tensors_hooks``.

Three uses. :func:`recorded_saved` and :func:`traced_saved` answer for a model that came from
torch: one meta forward with autograd saving (recorded with hooks for a Hugging Face
transformer, through its fx graph for a traced model), each saved tensor attributed to the
node that was running, so the memory account knows every value's storage and what each node
keeps, strides and all. :func:`measure_layer` answers for a layer the engine has no rule for
(an attention or recurrent module, an op measured on the meta device) where no such run is
at hand: it runs that one layer on meta tensors with autograd recording and names each saved
tensor as an input, the output or a new tensor, so the memory account can still count shared
storages once. :func:`autograd_saved` runs a real model on the CPU and attributes every saved
storage to the module that saved it first: the reference the tests hold the engine to.

Parameters and buffers are never activations: storages that belong to them are left out.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from shapecalc.core.inputs import Inputs
from shapecalc.core.layers import Layer, Shape
from shapecalc.core.layers.saved import Backward, Kept, Saved
from shapecalc.core.memory import TRAIN_DTYPES
from shapecalc.torch_bridge.measure import MeasuredLayer, torch_module

if TYPE_CHECKING:
    from shapecalc.core.memory import MeasuredRun, Settings


def _storage(t: Any) -> int:
    return t.untyped_storage()._cdata


@contextmanager
def _recording(into: list) -> Iterator[None]:
    torch = torch_module()

    def pack(t: Any) -> Any:
        into.append(t)  # holding the tensor keeps its storage (and so its id) unique
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


def measure_layer(layer: Layer, grad: Backward, output: Shape, *inputs: Shape
                  ) -> tuple[Saved, ...] | None:
    """The tensors ``layer`` saves at these shapes, measured without real memory; ``None`` when
    it cannot be run here (a module call recorded by hooks, a layer with no torch module)."""
    torch = torch_module()
    act = getattr(torch, grad.dtype)
    if isinstance(layer, MeasuredLayer):
        if layer.forward is None:
            return None
        # an op of the user's forward, rerun on the meta device with its weights as stand-ins
        return _run_and_name(layer, layer.forward, grad, inputs, "meta", set(),
                             list(layer.input_dtypes()) if layer.input_dtypes else [], False)
    from torch._subclasses.fake_tensor import FakeTensorMode

    from shapecalc.torch_bridge.build import layer_to_module

    # A module built from the spec, on fake CPU tensors: no memory, and torch picks the kernel
    # it would pick on a CPU (meta tensors would send attention down the math path).
    default = torch.get_default_dtype()
    with FakeTensorMode():
        try:  # built in the step's dtype (moving a fake module with .to() is refused)
            torch.set_default_dtype(act)
            module = layer_to_module(layer)
        except Exception:  # no torch module for this layer: unknown
            return None
        finally:
            torch.set_default_dtype(default)
        module.train(grad.training)
        for p in module.parameters():
            p.requires_grad_(grad.weights_grad)
        skip = {_storage(t) for t in list(module.parameters()) + list(module.buffers())}
        return _run_and_name(layer, module, grad, inputs, "cpu", skip, [], True)


def _run_and_name(layer: Layer, fn: Callable, grad: Backward, inputs: tuple[Shape, ...],
                  device: str, skip: set[int], kinds: list, distinct_args: bool
                  ) -> tuple[Saved, ...] | None:
    """Run ``fn`` on zero tensors of ``inputs``' shapes with autograd recording; name what it
    saves as inputs, the output or new tensors. ``distinct_args``: pass each value once."""
    torch = torch_module()
    act = getattr(torch, grad.dtype)
    kinds = kinds + [None] * (len(inputs) - len(kinds))
    same = grad.same_as or tuple(range(len(inputs)))
    xs: list[Any] = []
    for i, (shape, kind, need) in enumerate(zip(inputs, kinds, grad.needs_grad)):
        if same[i] != i:  # one value passed twice (self-attention): one tensor, as in the model
            xs.append(xs[same[i]])
            continue
        t = torch.zeros(tuple(shape), device=device, dtype=kind or act)
        if need and t.is_floating_point():
            t = t.requires_grad_().clone()  # not a leaf: an in-place op may write it
        xs.append(t)
    # A spec layer's module takes each distinct value once (MultiheadAttention as self-attention)
    args = [x for i, x in enumerate(xs) if same[i] == i] if distinct_args else xs
    saved: list[Any] = []
    try:
        with _recording(saved):
            out = fn(*args)
    except Exception:
        return None
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    where = {_storage(x): i for i, x in reversed(list(enumerate(xs)))}
    out_id = _storage(out) if isinstance(out, torch.Tensor) else None
    if isinstance(layer, MeasuredLayer) and xs:
        layer.cache["view"] = out_id == _storage(xs[0])
    kept: dict[int, Saved] = {}
    for t in saved:
        sid = _storage(t)
        base = t._base if t._base is not None else t  # F.linear keeps weight.t(), a view
        state = getattr(base, "shapecalc_state", False) or (base.is_leaf and base.requires_grad)
        if sid in kept or sid in skip or (state and sid not in where):
            continue  # a parameter or buffer, not an activation
        if sid in where:
            kept[sid] = Saved(Kept.INPUT, where[sid])
        elif sid == out_id:
            kept[sid] = Saved(Kept.OUTPUT)
        else:
            size = t.untyped_storage().nbytes() // t.element_size()
            kept[sid] = Saved(Kept.NEW, 0, (size,), str(t.dtype).removeprefix("torch."))
    return tuple(kept.values())


@contextmanager
def _step_on_meta(module: Any, inputs: Inputs, setup: Settings) -> Iterator[tuple[dict, list]]:
    """Meta stand-ins for ``module``'s weights (trainable ones wanting a gradient) and meta
    inputs, floats in the step's element type; every module in the step's mode, autograd on.
    Every flag is restored after."""
    torch = torch_module()
    from shapecalc.torch_bridge.measure import meta_input, meta_state

    act = getattr(torch, setup.param_dtype)
    state = meta_state(module, act, grad=True)
    xs = [meta_input(i.shape, act if i.dtype in TRAIN_DTYPES else i.dtype) for i in inputs]
    modes = [(m, m.training) for m in module.modules()]
    try:
        for m, _ in modes:
            m.training = setup.training
        with torch.enable_grad():
            yield state, xs
    finally:
        for m, flag in modes:
            m.training = flag


def recorded_saved(module: Any, name: str, inputs: Inputs, setup: Settings) -> MeasuredRun | None:
    """What autograd saves in one training-mode forward of ``module`` at ``inputs``, per node of
    the graph the hook recorder makes of that forward (:func:`~.fx_hooks.recorded_run`): each
    node's output storage, and the storages saved while it ran, parameters and buffers left
    out. It runs on the meta device in the step's element type (no memory, no compute);
    ``None`` when the forward cannot run there (it reads tensor values): unknown."""
    from torch.func import functional_call

    from shapecalc.torch_bridge.fx_hooks import recorded_run

    try:
        with _step_on_meta(module, inputs, setup) as (state, xs):
            _, calls, values = recorded_run(
                module, name, lambda: (xs, functional_call(module, state, tuple(xs))))
    except Exception:  # a forward that reads tensor values cannot run on meta: unknown
        return None
    return _measured_run(values, {call.node: call.saved for call in calls if call.saved})


def traced_saved(imp: Any, inputs: Inputs, setup: Settings) -> MeasuredRun | None:
    """The same for a model traced by torch.fx (``imp``, a ``TorchImport``): its traced graph
    run on meta with autograd saving, each saved tensor attributed to the fx node running and
    so to its engine node. Rules and per-op measurements see each op alone, on contiguous
    inputs; this run sees the strides the model gives them (a matmul on a permuted view keeps
    a contiguous copy). ``None`` (the rules stand) when a node's tensors are not all known."""
    torch = torch_module()
    from torch.func import functional_call

    from shapecalc.torch_bridge.fx_import import fx_runner

    outputs: dict[str, Any] = {}
    saved: dict[str, list] = {}
    running: list[str] = [""]

    def start(n: Any) -> None:
        running[0] = n.name

    def keep(n: Any, out: Any) -> Any:
        if n.op == "get_attr" and isinstance(out, torch.Tensor) and not out.is_meta:
            # a tensor constant fx made of a buffer (no stand-in swapped it in): state too
            out = torch.empty_like(out, device="meta")
            out.shapecalc_stands_for = id(out)
        outputs[n.name] = out
        return out

    def pack(t: Any) -> Any:
        saved.setdefault(running[0], []).append(t)
        return t

    runner = fx_runner(imp, keep, start)
    try:
        with _step_on_meta(runner, inputs, setup) as (state, xs), \
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            functional_call(runner, state, tuple(xs))
    except Exception:  # a forward meta cannot run: the rules stand
        return None
    nodes = {n.name for n in imp.graph.nodes} if imp.graph is not None else set()
    # engine node → fx node; a block's name maps to its last node's fx node too: nodes only
    engine_of = {fx: node for node, fx in reversed(imp.fx_names.items()) if node in nodes}
    placeholders = [n.name for n in imp.fx_graph.nodes if n.op == "placeholder"]
    engine_of.update(zip(placeholders, imp.graph.input_names if imp.graph is not None else ()))
    if any(_kept(tensors) for fx, tensors in saved.items() if fx not in engine_of):
        return None  # saved by an fx node no engine node stands for: not attributable
    return _measured_run({node: outputs.get(fx) for fx, node in engine_of.items()},
                         {engine_of[fx]: tensors for fx, tensors in saved.items() if fx in engine_of})


def _kept(tensors: list) -> dict[int, int]:
    """(storage → bytes) of saved tensors that are activations: not a parameter or buffer's
    stand-in, nor a view of one (F.linear keeps ``weight.t()``)."""
    kept: dict[int, int] = {}
    for t in tensors:
        base = t._base if t._base is not None else t
        if getattr(base, "shapecalc_stands_for", None) is None:
            kept.setdefault(_storage(t), t.untyped_storage().nbytes())
    return kept


def _measured_run(values: dict[str, Any], saved: dict[str, list]) -> MeasuredRun:
    """Per node, its output's storage and the storages saved while it ran."""
    torch = torch_module()
    from shapecalc.core.memory import MeasuredNode, MeasuredRun

    nodes = {}
    for node, value in values.items():
        while isinstance(value, (tuple, list)) and value:
            value = value[0]
        if isinstance(value, torch.Tensor):
            nodes[node] = MeasuredNode(_storage(value), value.untyped_storage().nbytes(),
                                       tuple(_kept(saved.get(node, [])).items()))
    return MeasuredRun(nodes)


def autograd_saved(module: Any, inputs: list[Any]) -> tuple[dict[str, int], int, Any]:
    """Run ``module(*inputs)`` with autograd recording; return the bytes each module saved
    first (by its path, the innermost running module; ``""`` for the top level), their total
    (every storage once) and the output. Parameters and buffers are not counted."""
    torch = torch_module()
    own = {_storage(t) for t in list(module.parameters()) + list(module.buffers())}
    stack: list[str] = [""]
    per: dict[str, int] = {}
    seen: set[int] = set()
    keep: list[Any] = []

    def pack(t: Any) -> Any:
        keep.append(t)
        sid = _storage(t)
        if sid not in own and sid not in seen:
            seen.add(sid)
            per[stack[-1]] = per.get(stack[-1], 0) + t.untyped_storage().nbytes()
        return t

    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue
        handles.append(sub.register_forward_pre_hook(lambda m, a, name=name: stack.append(name)))
        handles.append(sub.register_forward_hook(lambda m, a, o: stack.pop() and None))
    try:
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return per, sum(per.values()), out


__all__ = ["autograd_saved", "measure_layer", "recorded_saved", "traced_saved"]
