"""One pass over a torch.fx graph that emits engine nodes.

Every fx value is classified: a *tensor* (becomes an engine node), an *int* (``x.size(0)``,
``h == 224``, ``torch._assert(...)``: scalars that only feed other ops), a *tuple* of tensors
(``x.chunk(2)``, an LSTM's ``(out, (h, c))``: only its items are tensors) or a *const* (parameters
and buffers read with ``get_attr`` and what is computed from them alone, default arguments).
Tensors produced by a known module or op get a derived layer; every other tensor gets a measured
layer (``fx_measured``). Values the output does not depend on get no row; the parameters every
node uses are handed out by ``fx_params`` so that totals count each parameter once.
"""

from __future__ import annotations

from typing import Any

from shapecalc.core.errors import SpecError
from shapecalc.core.graph import Graph, GraphBuilder
from shapecalc.core.layers import Layer
from shapecalc.core.layers.functional import Reshape
from shapecalc.core.notes import Note, NoteKind
from shapecalc.torch_bridge import fx_ops
from shapecalc.torch_bridge.fx_common import ModuleIndex, blocks_for, labelled_leaves, module_to_layer, shared_layer
from shapecalc.torch_bridge.fx_measured import measured
from shapecalc.torch_bridge.fx_params import ParamLedger, attribute, loose_notes
from shapecalc.torch_bridge.fx_values import FxValues, ValueKind
from shapecalc.torch_bridge.measure import torch_module

_INT_METHODS = {"size", "dim", "numel", "nelement"}
_TUPLE_OPS = {"chunk", "split", "unbind", "tensor_split", "split_with_sizes", "topk", "sort", "max",
              "min", "median", "mode", "kthvalue", "var_mean", "std_mean", "unique", "aminmax",
              "frexp", "max_pool2d_with_indices"}
_ARITH = {"add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "iadd", "imul"}
#: Python scalars compared or combined: ``h == self.image_size`` is a bool, never a tensor.
_SCALAR = _ARITH | {"eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "truth", "is_",
                    "is_not", "contains", "abs", "floor", "ceil", "sqrt", "int", "float", "bool",
                    "min", "max", "len"}
#: Checks that return nothing (``torch._assert(h == 224, "…")``): no value, no row.
_CHECKS = {"assert", "check", "assert_async", "check_is_size", "assert_scalar"}


class FxConverter:
    def __init__(self, fx_graph: Any, root: Any, name: str,
                 layers: dict[int, Layer | None] | None = None,
                 index: ModuleIndex | None = None,
                 returned: dict[str, list[Any]] | None = None) -> None:
        self.torch = torch_module()
        #: module path → the fx values of the items its call returned (a tuple, a list)
        self.returned = returned or {}
        self.fx_graph = fx_graph
        self.root = root  # the traced module: fx targets are paths in it, its classes label blocks
        self.layers = layers if layers is not None else {}  # id(module) → its layer, decided once
        index = index or ModuleIndex.of(root)
        # What the measured nodes share with the converter: passed to them, never reached into.
        # Every weight's value by path is known from the index: getattr along each path (through
        # nn.Module.__getattr__ at every step) cost 5 µs a weight.
        self.values = FxValues(self.torch, root, index.modules,
                               attrs=dict(index.params + index.buffers))
        self.submodules: dict[str, Any] = index.modules
        self.made: dict[tuple, Layer] = {}  # op and arguments → its one layer (shared_layer)
        self.builder = GraphBuilder(name)
        self.kind = self.values.kind  # fx node → ValueKind
        self.engine: dict[Any, str] = {}
        self.used: set[str] = {self.builder.input_name}
        self.calls: dict[str, int] = {}
        self.fx_names: dict[str, str] = {}
        self.notes: list[Note] = []
        self.inputs: list[Any] = []  # placeholders that are graph inputs, in order
        self.measured_layers: list = []
        self.uses: dict[str, list] = {}  # engine node → [(parameter ids, how they are used)]
        self.tuple_owner: dict[Any, str] = {}  # fx tuple value → engine node that counted it
        self.ledger = ParamLedger(self.root, index.params)
        self.live: set[Any] = set()
        #: forward parameters the caller leaves at their defaults (``attn_mask=None``) → that
        #: default: a call reading one is mapped as if the default were written in its place
        self.defaults: dict[Any, Any] = {}
        self.default_users: set[Any] = set()  # the nodes that read one of ``defaults``
        #: fx node → its op's plain name (``fx_ops.op_name``): classifying, naming, mapping
        #: and counting a node each ask it, so it is found once per node
        self.op_names: dict[Any, str] = {}

    # ---------------------------------------------------------------- driver
    def run(self) -> Graph:
        nodes = list(self.fx_graph.nodes)
        out_node = next((n for n in nodes if n.op == "output"), None)
        if out_node is None:
            raise SpecError("the traced forward returns nothing")
        self.live = self.values.live(nodes, [out_node, *(n for items in self.returned.values()
                                                         for n in items)])
        self.op_names = {n: fx_ops.op_name(n) for n in nodes}
        kinds, tensor = self.kind, ValueKind.TENSOR
        for node in nodes:
            op = node.op
            if op == "output":
                continue
            kind = kinds[node] = self._classify(node)
            if kind is tensor and op != "placeholder" and self._wanted(node):
                self._emit(node)
        outputs = self._outputs(out_node)
        graph = self.builder.finish(outputs[0][1])
        graph.outputs = tuple(outputs)
        graph.input_labels = tuple(str(n.target) for n in self.inputs)
        graph.nodes = attribute(self.ledger, graph.nodes, self.uses)
        graph.loose_params, graph.loose_frozen, loose = loose_notes(self.ledger)
        graph.notes = list(self.notes) + loose
        returned = {path: tuple(self.engine[n] for n in items if n in self.engine)
                    for path, items in self.returned.items()}
        graph.blocks = blocks_for(graph.nodes, self.submodules, graph.output, returned)
        return graph

    def set_dtypes(self, dtypes: dict[str, Any]) -> None:
        """Element types of the fx values for the next analysis; measurements redone if changed."""
        if dtypes != self.values.dtypes:
            self.values.reset_dtypes(dtypes)
            for layer in self.measured_layers:
                layer.cache.clear()

    def _wanted(self, node: Any) -> bool:
        """Live values, and in-place ops (their effect lives on in the tensor they change)."""
        if node in self.live:
            return True
        name = str(node.target) if node.op == "call_method" else self.op_names[node]
        return (name.endswith("_") and not name.startswith("_")) or node.kwargs.get("inplace") is True \
            or name in ("iadd", "imul", "isub")

    def _outputs(self, node: Any) -> list[tuple[str, str]]:
        """Every tensor the forward returns, labelled by its dict key or tuple index."""
        Node = self.torch.fx.Node

        def expand(value: Any) -> Any:  # a node that builds a namedtuple/tuple: its items
            if not (isinstance(value, Node) and self.kind.get(value) is ValueKind.STRUCT):
                return None
            fields = getattr(value.target, "_fields", None) or range(len(value.args))
            items = list(value.args) + [value.kwargs[f] for f in fields[len(value.args):]] \
                if value.kwargs else list(value.args)
            return value.target(*items) if hasattr(value.target, "_fields") else tuple(items)

        value = node.args[0]
        found = [(label or "output", self.engine[leaf]) for label, leaf in labelled_leaves(value, expand)
                 if self.values.is_tensor(leaf) and leaf in self.engine]
        if not found:
            raise SpecError("the forward does not return a tensor")
        if len(found) > 1 or not isinstance(value, self.torch.fx.Node):
            self.notes.append(Note.of(NoteKind.OUTPUTS, count=len(found),
                                      labels=tuple(label for label, _ in found)))
        return found

    # ---------------------------------------------------------------- classification
    def _classify(self, node: Any) -> ValueKind:
        op = node.op
        if op == "placeholder":
            if node.args:  # an argument with a default value: only the graph's inputs are given
                self.defaults[node] = node.args[0]
                self.default_users.update(node.users)
                return ValueKind.CONST
            if not self.inputs:
                self.engine[node] = self.builder.input_name
            else:
                name = self._unique(str(node.target))
                self.engine[node] = self.builder.add_input(name)
            self.inputs.append(node)
            self.fx_names[self.engine[node]] = node.name
            return ValueKind.TENSOR
        if op == "get_attr":
            return ValueKind.CONST
        if op == "call_function" and isinstance(node.target, type) and issubclass(node.target, tuple):
            return ValueKind.STRUCT  # a namedtuple of results (GoogLeNet's outputs): its fields are outputs
        name = self.op_names[node]
        kinds = self.kind
        if op == "call_method" and name in _INT_METHODS:
            return ValueKind.INT
        if name == "getattr" or name in _CHECKS:
            return ValueKind.INT
        if name == "getitem":
            base = node.args[0]
            base_kind = kinds.get(base) if isinstance(base, self.torch.fx.Node) else None
            if base_kind in (ValueKind.INT, ValueKind.CONST):
                return base_kind
        elif op in ("call_function", "call_method"):
            arg_kinds = {kinds.get(a) for a in node.all_input_nodes}
            if ValueKind.TENSOR not in arg_kinds:
                if name in _SCALAR and ValueKind.CONST not in arg_kinds:
                    return ValueKind.INT
                if ValueKind.CONST in arg_kinds and ValueKind.TUPLE not in arg_kinds:
                    return ValueKind.CONST  # computed from parameters/buffers alone (a bias-table lookup)
        # x[0] on a tensor is indexing too: only ops known to return tuples (modules such as
        # LSTM whose results are only ever indexed, and the items of such tuples) make tuples.
        nested = name == "getitem" and kinds.get(node.args[0]) is ValueKind.TUPLE
        if op == "call_module" or name in _TUPLE_OPS or nested:
            users = node.users
            op_names = self.op_names
            if users and all(u.op == "call_function" and op_names[u] == "getitem"
                             and isinstance(u.args[1], int) for u in users):
                return ValueKind.TUPLE
        return ValueKind.TENSOR

    # ---------------------------------------------------------------- emission
    def _unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self.used:
            candidate = f"{name}_{i}"
            i += 1
        self.used.add(candidate)
        return candidate

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
                key, value = next(reversed(stack.items()))
                prefix = value[0] if isinstance(value, tuple) else str(key)
            base = self.op_names[node]
            name = f"{prefix}.{base}" if prefix else base
        return self._unique(name)

    def _emit(self, node: Any) -> None:
        root = self.values.tuple_root(node) if self.op_names[node] == "getitem" else node
        item_of = root if root is not node else None
        module = str(root.target) if root.op == "call_module" else None
        first_item = item_of is not None and item_of not in self.tuple_owner
        if first_item and module is not None and not (node.args[1] == 0 and node.args[0] is item_of):
            first_item = not self._module_row(item_of)  # only h_n used: the GRU still gets its row
        # The first item of a module's tuple (an LSTM's output) is that module's row.
        name = self._name(root if first_item and module is not None else node)
        mapped = self._mapped(node) if item_of is None or (
            first_item and node.args[1] == 0 and node.args[0] is item_of) else None
        if mapped is not None:
            layer, inputs = mapped
        else:
            layer, inputs = measured(self.values, node, count_macs=item_of is None or first_item)
            self.measured_layers.append(layer)
        uses = []
        if module is not None and (item_of is None or first_item):
            uses.append((self.ledger.module_params(self.values.submodule(module)), None))
        # a node that reads only tensors (most: a module call on its input) reads no parameter
        kinds, reads = self.kind, ()
        for a in node.all_input_nodes:
            if kinds.get(a) is not ValueKind.TENSOR:
                reads = self.values.param_reads(node)
                break
        if reads:
            uses.append((reads, f"through {self.op_names[node]}"))
        notes: tuple = ()
        if item_of is not None:
            if first_item:
                self.tuple_owner[item_of] = name
            else:
                notes = (Note.of(NoteKind.TUPLE_ITEM, index=self._item_path(node),
                                 owner=self.tuple_owner[item_of]),)
        if uses:
            self.uses[name] = uses
        engine = self.engine
        self.builder.add(name, layer, tuple([engine[i] for i in inputs]), module=module,
                         param_key=name)
        if notes:
            import dataclasses

            last = self.builder.nodes[-1]
            self.builder.nodes[-1] = dataclasses.replace(last, notes=notes, params=0)
        self.engine[node] = name
        self.fx_names[name] = node.name

    def _item_path(self, node: Any) -> str:
        """``[1][-2]`` for ``gru(x)[1][-2]``: where in the tuple an item sits."""
        path = ""
        while fx_ops.op_name(node) == "getitem" and self.values.is_tuple(node.args[0]):
            path = f"[{node.args[1]!r}]" + path
            node = node.args[0]
        return path

    def _module_row(self, call: Any) -> bool:
        """A row for a known module whose tuple's first item is unused (``_, h = self.gru(x)``):
        its layer, parameters and MACs are there, and the items used are measured beside it."""
        mapped = self._mapped(call)
        if mapped is None:
            return False
        layer, inputs = mapped
        name = self._name(call)
        self.builder.add(name, layer, tuple(self.engine[i] for i in inputs), module=str(call.target),
                         param_key=name)
        self.uses[name] = [(self.ledger.module_params(self.values.submodule(call.target)), None)]
        self.tuple_owner[call] = name
        self.fx_names[name] = call.name
        return True

    def _arguments(self, node: Any) -> tuple[tuple, dict]:
        """A call's arguments, with each defaulted forward parameter read as its default."""
        if node not in self.default_users:
            return node.args, dict(node.kwargs) if node.kwargs else {}
        defaults = self.defaults
        args, kwargs = self.torch.fx.node.map_arg(
            (node.args, node.kwargs), lambda n: defaults[n] if n in defaults else n)
        return tuple(args), dict(kwargs)

    def _mapped(self, node: Any) -> tuple[Layer, list[Any]] | None:
        Node = self.torch.fx.Node
        call = node
        name = self.op_names[node]
        if name == "getitem" and self.values.is_tuple(node.args[0]):
            call = node.args[0]  # item 0 of a module's tuple: the layer describes that item
        if call.op == "call_module":
            sub = self.values.submodule(call.target)
            layer = self.layers[id(sub)] if id(sub) in self.layers else module_to_layer(sub)
            if layer is None:
                return None
            call_args, call_kwargs = self._arguments(call)
            if not call_args or not self._all_tensors(call_args):
                return None
            variadic = layer.arity == 0  # attention: one input or query, key and value
            if len(call_args) != 1 and not variadic:
                return None
            if call_kwargs and (not variadic or any(
                    isinstance(v, Node) for v in self._flat(call_kwargs.values()))):
                return None
            return layer, list(call_args)
        if node is not call:
            return None
        if node.op not in ("call_function", "call_method") or not fx_ops.is_torch_op(node):
            return None
        args, kwargs = self._arguments(node)
        if name in fx_ops.BINARY:
            if len(args) != 2 or kwargs:
                return None
            tensors = [a for a in args if self._is_tensor(a)]
            others = [a for a in args if not self._is_tensor(a)]
            if any(isinstance(o, Node) or not isinstance(o, (int, float)) for o in others):
                return None
            op = fx_ops.BINARY[name]
            layer = shared_layer(self.made, ("binary", op, len(tensors)), fx_ops.make_binary, op,
                                 len(tensors))
            return layer, tensors
        if name == "cat":
            seq = args[0] if args else kwargs.get("tensors")
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if not isinstance(seq, (list, tuple)) or not all(self._is_tensor(t) for t in seq) \
                    or not isinstance(dim, int):
                return None
            return shared_layer(self.made, ("cat", dim), fx_ops.make_cat, dim), list(seq)
        weighted = fx_ops.map_call(name, args, kwargs, self._is_tensor, self._weight_shape,
                                   self._shared)
        if weighted is not None:  # F.linear(x, self.w), F.scaled_dot_product_attention(q, k, v)
            layer, tensors, _weights = weighted  # fx_params gives the weights to this node
            return layer, tensors
        if not args or not self._is_tensor(args[0]):
            return None
        source, rest = args[0], args[1:]
        if name in ("view", "reshape"):
            if name == "reshape" and node.op == "call_function":
                rest = (kwargs.pop("shape", rest[0] if rest else ()),)
            if kwargs:
                return None
            shape = self.values.shape_args(source, rest)
            return (Reshape(shape), [source]) if shape is not None else None
        if name == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            dims = kwargs.get("dims", dims)
            if not dims or not all(isinstance(d, int) for d in dims):
                return None
            dims = tuple(dims)
            return shared_layer(self.made, ("permute", dims), fx_ops.make_permute, dims), [source]
        entry = fx_ops.OPS.get(name)
        if entry is None:
            return None
        names, factory = entry
        bound = fx_ops.bind(names, tuple(rest), kwargs)
        if bound is None or any(isinstance(v, Node) for v in self._flat(bound.values())):
            return None
        if name == "mean" and "dim" not in bound:
            return None
        arguments = {k: fx_ops.tupled(v) for k, v in bound.items()}
        try:
            layer = shared_layer(self.made, (name, *sorted(arguments.items())), factory, **arguments)
        except Exception:
            return None
        return layer, [source]

    def _weight_shape(self, value: Any) -> tuple[int, ...] | None:
        """Shape of a parameter/buffer read (``get_attr``) passed to a call; else ``None``."""
        if not isinstance(value, self.torch.fx.Node) or value.op != "get_attr":
            return None
        obj = self.values.attr(str(value.target))
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
        return self.values.is_tensor(value)

    def _all_tensors(self, values: Any) -> bool:
        """Every value is a tensor node (as ``_is_tensor`` says, without a call per value)."""
        Node, kinds, tensor = self.torch.fx.Node, self.kind, ValueKind.TENSOR
        for value in values:
            if not isinstance(value, Node) or kinds.get(value) is not tensor:
                return False
        return True

    def _shared(self, key: tuple, factory: Any, **arguments: Any) -> Layer:
        """``factory(**arguments)``, one layer per distinct key in this graph (shared_layer)."""
        return shared_layer(self.made, key, factory, **arguments)
