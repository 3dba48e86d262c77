"""One pass over a torch.fx graph that emits engine nodes.

Every fx value is classified: a *tensor* (becomes an engine node), an *int* (``x.size(0)``,
``x.shape[1]``: only feeds other ops), a *tuple* of tensors (``x.chunk(2)``: only its items are
tensors) or a *const* (parameters read with ``get_attr``, default arguments). Tensors produced by
a known module or op get a derived layer; every other tensor gets a measured layer whose runner
re-evaluates just that fx node on meta tensors, through the int/tuple values it depends on.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..graph import Graph, GraphBuilder
from ..layers import Layer
from ..layers.functional import Reshape
from . import fx_ops
from .fx_common import blocks_for, module_to_layer, param_count
from .measure import MeasuredLayer, call_on_meta, measured_runner, torch_module

_INT_METHODS = {"size", "dim", "numel", "nelement"}
_TUPLE_OPS = {"chunk", "split", "unbind", "tensor_split", "split_with_sizes", "topk", "sort", "max",
              "min", "median", "mode", "kthvalue", "var_mean", "std_mean", "unique", "aminmax",
              "frexp", "max_pool2d_with_indices"}
_ARITH = {"add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "iadd", "imul"}


class FxConverter:
    def __init__(self, gm: Any, name: str, root: Any = None) -> None:
        self.torch = torch_module()
        self.gm = gm
        self.root = gm if root is None else root  # the user's module: its class names label blocks
        self.builder = GraphBuilder(name)
        self.kind: dict[Any, str] = {}
        self.engine: dict[Any, str] = {}
        self.used: set[str] = {self.builder.input_name}
        self.calls: dict[str, int] = {}
        self.fx_names: dict[str, str] = {}
        self.notes: list[str] = []
        self.inputs_seen = 0
        #: get_attr targets a derived layer already counts (``F.linear(x, self.w)``'s weight)
        self.counted_weights: set[str] = set()

    # ---------------------------------------------------------------- driver
    def run(self) -> Graph:
        output = None
        for node in self.gm.graph.nodes:
            if node.op == "output":
                output = self._output(node)
                continue
            self.kind[node] = self._classify(node)
            if self.kind[node] == "tensor" and node.op != "placeholder":
                self._emit(node)
        if output is None:
            raise SpecError("the traced forward returns nothing")
        graph = self.builder.finish(output)
        graph.blocks = blocks_for(graph.nodes, self.root, output)
        return graph

    def _output(self, node: Any) -> str:
        value = node.args[0]
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, (tuple, list)):
            tensors = [v for v in value if isinstance(v, self.torch.fx.Node)
                       and self.kind.get(v) == "tensor"]
            if not tensors:
                raise SpecError("the forward returns no tensor")
            self.notes.append(f"forward returns {len(value)} values; the first tensor is analysed")
            value = tensors[0]
        if not isinstance(value, self.torch.fx.Node) or self.kind.get(value) != "tensor":
            raise SpecError("the forward does not return a tensor")
        return self.engine[value]

    # ---------------------------------------------------------------- classification
    def _classify(self, node: Any) -> str:
        if node.op == "placeholder":
            self.inputs_seen += 1
            if self.inputs_seen == 1:
                self.engine[node] = self.builder.input_name
                self.fx_names[self.builder.input_name] = node.name
                return "tensor"
            if node.args:  # an argument with a default value
                return "const"
            raise SpecError(f"forward takes a second input {node.target!r}; shapecalc analyses "
                            "models with one input tensor")
        if node.op == "get_attr":
            return "const"
        name = fx_ops.op_name(node)
        arg_kinds = [self.kind.get(a) for a in self._arg_nodes(node)]
        if node.op == "call_method" and name in _INT_METHODS:
            return "int"
        if name == "getattr":
            return "int"
        if name == "getitem":
            base = node.args[0]
            base_kind = self.kind.get(base) if isinstance(base, self.torch.fx.Node) else None
            return "int" if base_kind == "int" else "tensor"
        if node.op in ("call_function", "call_method") and arg_kinds and "tensor" not in arg_kinds \
                and name in _ARITH:
            return "int"
        users = list(node.users)
        indexed = bool(users) and all(
            u.op == "call_function" and fx_ops.op_name(u) == "getitem" and isinstance(u.args[1], int)
            for u in users)
        # x[0] on a tensor is indexing too: only ops known to return tuples (and modules such
        # as LSTM whose results are only ever indexed) make tuples.
        if indexed and (node.op == "call_module" or name in _TUPLE_OPS):
            return "tuple"
        return "tensor"

    def _arg_nodes(self, node: Any) -> list[Any]:
        found: list[Any] = []
        self.torch.fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) or n)
        return found

    def _frontier(self, node: Any) -> list[Any]:
        """Tensor nodes this node reads, looking through int/tuple/const values."""
        out: list[Any] = []
        seen: set[Any] = set()

        def visit(n: Any) -> None:
            if n in seen:
                return
            seen.add(n)
            if self.kind.get(n) == "tensor":
                out.append(n)
                return
            for a in self._arg_nodes(n):
                visit(a)

        for a in self._arg_nodes(node):
            visit(a)
        return out

    # ---------------------------------------------------------------- emission
    def _name(self, node: Any) -> str:
        if node.op == "call_module":
            target = str(node.target)
            self.calls[target] = self.calls.get(target, 0) + 1
            k = self.calls[target]
            name = target if k == 1 else f"{target}#{k}"
        else:
            stack = node.meta.get("nn_module_stack") or {}
            prefix = ""
            if stack:
                key, value = list(stack.items())[-1]
                prefix = value[0] if isinstance(value, tuple) else str(key)
            base = fx_ops.op_name(node)
            name = f"{prefix}.{base}" if prefix else base
        candidate, i = name, 1
        while candidate in self.used:
            candidate = f"{name}_{i}"
            i += 1
        self.used.add(candidate)
        return candidate

    def _emit(self, node: Any) -> None:
        name = self._name(node)
        mapped = self._mapped(node)
        module = str(node.target) if node.op == "call_module" else None
        if mapped is not None:
            layer, inputs = mapped
            origin = "derived"
        else:
            layer, inputs = self._measured(node)
            origin = "measured"
        self.builder.add(name, layer, tuple(self.engine[i] for i in inputs), module=module,
                         param_key=self._param_key(module) if module else name, origin=origin)
        self.engine[node] = name
        self.fx_names[name] = node.name

    def _param_key(self, target: str) -> str:
        """Modules whose parameters all belong to an earlier module (tied weights) share its key."""
        params = [id(p) for p in self.gm.get_submodule(target).parameters()]
        owners = self.__dict__.setdefault("_owners", {})
        if params and all(p in owners for p in params):
            return owners[params[0]]
        for p in params:
            owners.setdefault(p, target)
        return target

    def _mapped(self, node: Any) -> tuple[Layer, list[Any]] | None:
        Node = self.torch.fx.Node
        if node.op == "call_module":
            layer = module_to_layer(self.gm.get_submodule(node.target))
            if layer is None or node.kwargs or len(node.args) != 1:
                return None
            arg = node.args[0]
            return (layer, [arg]) if self._is_tensor(arg) else None
        if node.op not in ("call_function", "call_method") or not fx_ops.is_torch_op(node):
            return None
        name = fx_ops.op_name(node)
        args, kwargs = node.args, dict(node.kwargs)
        if name in fx_ops.BINARY:
            if len(args) != 2 or kwargs:
                return None
            tensors = [a for a in args if self._is_tensor(a)]
            others = [a for a in args if not self._is_tensor(a)]
            if any(isinstance(o, Node) or not isinstance(o, (int, float)) for o in others):
                return None
            return fx_ops.make_binary(fx_ops.BINARY[name], len(tensors)), tensors
        if name == "cat":
            seq = args[0] if args else kwargs.get("tensors")
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if not isinstance(seq, (list, tuple)) or not all(self._is_tensor(t) for t in seq) \
                    or not isinstance(dim, int):
                return None
            return fx_ops.make_cat(dim), list(seq)
        weighted = fx_ops.map_call(name, args, kwargs, self._is_tensor, self._weight_shape)
        if weighted is not None:  # F.linear(x, self.w), F.scaled_dot_product_attention(q, k, v)
            layer, tensors, weights = weighted
            self.counted_weights.update(str(w.target) for w in weights)
            return layer, tensors
        if not args or not self._is_tensor(args[0]):
            return None
        source, rest = args[0], args[1:]
        if name in ("view", "reshape"):
            if name == "reshape" and node.op == "call_function":
                rest = (kwargs.pop("shape", rest[0] if rest else ()),)
            if kwargs:
                return None
            shape = self._shape_args(source, rest)
            return (Reshape(shape), [source]) if shape is not None else None
        if name == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            dims = kwargs.get("dims", dims)
            if not dims or not all(isinstance(d, int) for d in dims):
                return None
            return fx_ops.make_permute(tuple(dims)), [source]
        entry = fx_ops.OPS.get(name)
        if entry is None:
            return None
        names, factory = entry
        bound = fx_ops.bind(names, tuple(rest), kwargs)
        if bound is None or any(isinstance(v, Node) for v in self._flat(bound.values())):
            return None
        if name == "mean" and "dim" not in bound:
            return None
        try:
            layer = factory(**{k: fx_ops.tupled(v) for k, v in bound.items()})
        except Exception:
            return None
        return layer, [source]

    def _weight_shape(self, value: Any) -> tuple[int, ...] | None:
        """Shape of a parameter/buffer read (``get_attr``) passed to a call; else ``None``."""
        if not isinstance(value, self.torch.fx.Node) or value.op != "get_attr":
            return None
        obj = self.gm
        for part in str(value.target).split("."):
            obj = getattr(obj, part, None)
        return tuple(obj.shape) if isinstance(obj, self.torch.Tensor) else None

    def _flat(self, values: Any) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if isinstance(v, (list, tuple)):
                out.extend(self._flat(v))
            else:
                out.append(v)
        return out

    def _is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.torch.fx.Node) and self.kind.get(value) == "tensor"

    def _shape_args(self, source: Any, rest: tuple) -> tuple[int, ...] | None:
        """``view(x.size(0), -1)`` → ``(0, -1)``: a dim read from the same input at the same place."""
        if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
            rest = tuple(rest[0])
        shape: list[int] = []
        for pos, value in enumerate(rest):
            if isinstance(value, int) and not isinstance(value, bool):
                if value == 0:
                    return None  # a literal 0 would mean "copy" to Reshape; let torch decide
                shape.append(value)
            elif self._dim_of(value, source) == pos:
                shape.append(0)
            else:
                return None
        return tuple(shape) if shape else None

    def _dim_of(self, value: Any, source: Any) -> int | None:
        """Which dim of ``source`` a value reads (``x.size(1)``, ``x.shape[1]``), else None."""
        Node = self.torch.fx.Node
        if not isinstance(value, Node):
            return None
        if value.op == "call_method" and value.target == "size" and value.args[0] is source:
            dim = value.args[1] if len(value.args) > 1 else value.kwargs.get("dim")
            return dim if isinstance(dim, int) and dim >= 0 else None
        if value.op == "call_function" and fx_ops.op_name(value) == "getitem":
            base, index = value.args
            if not isinstance(index, int) or index < 0 or not isinstance(base, Node):
                return None
            if base.op == "call_method" and base.target == "size" and len(base.args) == 1 \
                    and base.args[0] is source:
                return index
            if base.op == "call_function" and base.target is getattr and base.args[0] is source \
                    and base.args[1] == "shape":
                return index
        return None

    def _label(self, node: Any) -> str:
        """``chunk(2, 1)[0]``: the call with its constant arguments, tensors left out."""
        Node = self.torch.fx.Node
        name = fx_ops.op_name(node)
        if name == "getitem" and isinstance(node.args[0], Node) and self.kind.get(node.args[0]) == "tuple":
            base = node.args[0]
            inner = repr(self.gm.get_submodule(base.target)) if base.op == "call_module" else self._label(base)
            return f"{inner}[{node.args[1]!r}]"
        if name == "getitem":
            return f"getitem[{_short(node.args[1])}]"
        parts = [_short(a) for a in node.args if not isinstance(a, Node)]
        parts += [f"{k}={_short(v)}" for k, v in node.kwargs.items() if not isinstance(v, Node)]
        return f"{name}({', '.join(parts)})"

    def _measured(self, node: Any) -> tuple[Layer, list[Any]]:
        frontier = self._frontier(node)
        torch = self.torch
        gm = self.gm
        if node.op == "call_module":
            sub = gm.get_submodule(node.target)
            text = repr(sub)
            label = text if "\n" not in text and len(text) <= 60 else type(sub).__name__
            op_type = type(sub).__name__
            params = param_count(sub)
        else:
            op_type = fx_ops.op_name(node)
            label = self._label(node)
            params = 0

        def evaluate(*tensors: Any) -> Any:
            env = dict(zip(frontier, tensors))

            def ev(n: Any) -> Any:
                if n in env:
                    return env[n]
                if n.op == "get_attr":
                    value = gm
                    for part in str(n.target).split("."):
                        value = getattr(value, part)
                    if isinstance(value, torch.Tensor):
                        value = torch.empty_like(value, device="meta")
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
                        value = call_on_meta(gm.get_submodule(n.target), *args, **kwargs)
                env[n] = value
                return value

            return ev(node)

        layer = MeasuredLayer(label, op_type, params, "", runner=measured_runner(evaluate, label))
        return layer, frontier


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, slice) else (
        f"{'' if value.start is None else value.start}:{'' if value.stop is None else value.stop}")
    if isinstance(value, tuple):
        text = "(" + ", ".join(_short(v) for v in value) + ")"
    return text if len(text) <= 30 else text[:27] + "…"
