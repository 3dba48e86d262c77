"""fx nodes the engine has no formula for, measured by re-running just that node on meta tensors.

A measured node re-evaluates its fx node from the tensors it reads (its *frontier*), through the
int, tuple and constant values in between (``x.size(0)``, ``x.chunk(2)``, a parameter read
with ``get_attr``). Inputs are meta tensors of the recorded element type (token ids stay int64),
and torch's FLOP counter gives the MACs. An item of a tuple already counted at another node
(the state of an LSTM next to its output) re-runs for its shape but counts no MACs again.
"""

from __future__ import annotations

from typing import Any, Callable

from shapecalc.torch_bridge import fx_ops
from shapecalc.torch_bridge.fx_values import FxValues
from shapecalc.torch_bridge.mac_count import MAC_FREE_OPS
from shapecalc.torch_bridge.measure import MeasuredLayer, call_on_meta, measured_runner


def label(values: FxValues, node: Any) -> str:
    """``chunk(2, 1)[0]``: the call with its constant arguments, tensors left out."""
    Node = values.torch.fx.Node
    name = fx_ops.op_name(node)
    if name == "getitem" and values.is_tuple(node.args[0]):
        base = node.args[0]
        inner = (repr(values.submodule(base.target)) if base.op == "call_module"
                 else label(values, base))
        if "\n" in inner or len(inner) > 60:
            inner = type(values.submodule(base.target)).__name__ if base.op == "call_module" \
                else fx_ops.op_name(base)
        return f"{inner}[{node.args[1]!r}]"
    if name == "getitem":
        return f"getitem[{_short(node.args[1])}]"
    parts = [_short(a) for a in node.args if not isinstance(a, Node)]
    parts += [f"{k}={_short(v)}" for k, v in node.kwargs.items() if not isinstance(v, Node)]
    return f"{name}({', '.join(parts)})"


def measured(values: FxValues, node: Any, count_macs: bool = True) -> tuple[MeasuredLayer, list[Any]]:
    """A :class:`MeasuredLayer` for ``node`` and the tensor nodes it reads; it measures with the
    element types ``values.dtypes`` holds when it runs."""
    frontier = values.frontier(node)
    torch = values.torch
    root = values.root
    if node.op == "call_module":
        sub = values.submodule(node.target)
        text = repr(sub)
        name = text if "\n" not in text and len(text) <= 60 else type(sub).__name__
        op_type = type(sub).__name__
    else:
        op_type = fx_ops.op_name(node)
        name = label(values, node)

    def evaluate(*tensors: Any) -> Any:
        env = dict(zip(frontier, tensors))

        def ev(n: Any) -> Any:
            if n in env:
                return env[n]
            if n.op == "get_attr":
                value = root
                for part in str(n.target).split("."):
                    value = getattr(value, part)
                if isinstance(value, torch.Tensor):  # a weight keeps wanting its gradient
                    value = torch.empty_like(value, device="meta").requires_grad_(value.requires_grad)
                    value.shapecalc_state = True  # a parameter or buffer: never an activation
            elif n.op == "placeholder":
                value = n.args[0] if n.args else None
            else:
                args = torch.fx.node.map_arg(n.args, ev)
                kwargs = torch.fx.node.map_arg(n.kwargs, ev)
                if n.op == "call_function":
                    value = n.target(*args, **kwargs)
                elif n.op == "call_method":
                    value = getattr(args[0], n.target)(*args[1:], **kwargs)
                else:
                    value = call_on_meta(values.submodule(n.target), *args, **kwargs)
            env[n] = value
            return value

        return ev(node)

    def dtypes() -> list[Any]:
        return [values.dtype_of(f.name) for f in frontier]

    def seen(dtype: Any) -> None:
        values.seen_dtypes[node.name] = dtype

    run = shared(values, values.signature(node, frontier), node.name,
                 measured_runner(evaluate, name, dtypes, seen,
                                 lambda: multiplies_nothing(values, node, frontier)), dtypes)
    runner: Callable = run if count_macs else (lambda *shapes: (run(*shapes)[0], 0))
    # A module call runs through call_on_meta (no autograd); an op can be rerun recording.
    forward = evaluate if node.op != "call_module" else None
    return MeasuredLayer(name, op_type, 0, "", runner=runner, forward=forward,
                         input_dtypes=dtypes), frontier


def multiplies_nothing(values: FxValues, node: Any, frontier: list[Any]) -> bool:
    """Whether re-running ``node`` from ``frontier`` runs only torch ops in
    :data:`~shapecalc.torch_bridge.mac_count.MAC_FREE_OPS` (a view of ``x.size(0)`` rows, a
    window shift): then its MACs are 0 with no counter. A module call never is."""
    inputs = set(frontier)
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if n in seen or n in inputs:
            continue
        seen.add(n)
        if n.op in ("call_function", "call_method"):
            if not fx_ops.is_torch_op(n) or fx_ops.op_name(n) not in MAC_FREE_OPS:
                return False
        elif n.op not in ("get_attr", "placeholder"):
            return False
        stack.extend(values.arg_nodes(n))
    return True


def shared(values: FxValues, signature: tuple | None, node_name: str,
           run: Callable[..., tuple], dtypes: Callable[[], list[Any]]) -> Callable[..., tuple]:
    """``run``, answered from an earlier node's measurement when that node has the same
    ``signature`` and read inputs of the same shapes and element types."""
    if signature is None:
        return run

    def run_shared(*shapes: Any) -> tuple:
        key = (signature, shapes, tuple(dtypes()))
        hit = values.measured_memo.get(key)
        if hit is None:
            shape, macs = run(*shapes)
            hit = values.measured_memo[key] = (shape, macs, values.seen_dtypes.get(node_name))
        else:
            values.seen_dtypes[node_name] = hit[2]
        return hit[0], hit[1]

    return run_shared


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, slice) else (
        f"{'' if value.start is None else value.start}:{'' if value.stop is None else value.stop}")
    if isinstance(value, tuple):
        text = "(" + ", ".join(_short(v) for v in value) + ")"
    return text if len(text) <= 30 else text[:27] + "…"
