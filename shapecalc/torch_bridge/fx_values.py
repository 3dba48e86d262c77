"""Reading an fx graph's values: what a node reads through scalars and constants, and which
dims of a tensor a ``view(x.size(0), -1)`` copies.

Shared by the converter (which tensors feed a node, which parameters it reads, which tuple an
item comes from, which values the output depends on) and by measured nodes, which re-evaluate
a node from exactly the tensors :meth:`FxValues.frontier` names. The converter hands it to them
explicitly (no mixin, no reach into the converter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shapecalc.torch_bridge import fx_ops


class ValueKind(Enum):
    """What an fx value is, as the converter classifies each node once."""

    TENSOR = "tensor"  # a tensor: a row of its own when the output depends on it
    TUPLE = "tuple"  # a module's or op's tuple of results, only ever indexed
    STRUCT = "struct"  # a namedtuple of results (GoogLeNet's outputs): its fields are outputs
    CONST = "const"  # computed from parameters, buffers and defaults alone
    INT = "int"  # a Python number (``x.size(0)``, a check)


class _Unshareable(Exception):
    """A node reads a value that :meth:`FxValues.signature` cannot compare."""


_PLAIN = (bool, int, float, complex, str)
_PLAIN_TYPES = frozenset({bool, int, float, complex, str, type(None), type(Ellipsis)})


@dataclass
class FxValues:
    """What is known about one traced graph's values, shared by the converter and the measured
    nodes it makes: the traced module, its modules by path, each node's kind, and the element
    type of each value for the current analysis."""

    torch: Any
    root: Any  # the traced module: fx targets are paths in it
    submodules: dict[str, Any]  # module path → module (one table instead of a walk per call)
    kind: dict[Any, ValueKind] = field(default_factory=dict)
    dtypes: dict[str, Any] = field(default_factory=dict)  # fx node name → torch dtype
    #: Element types that measured nodes gave in this analysis (fx node name → torch dtype):
    #: a mask a measured op builds (``zeros(...).to(torch.bool)``) reaches the op that reads it
    #: as torch made it, with no meta run of the whole graph to find it.
    seen_dtypes: dict[str, Any] = field(default_factory=dict)
    #: Measurements by (:meth:`signature`, input shapes, input dtypes): the same op on the same
    #: shapes in every block of a ViT runs once on the meta device.
    measured_memo: dict[tuple, tuple] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # get_attr target → its value
    attr_signatures: dict[str, tuple] = field(default_factory=dict)  # get_attr target → its signature

    def __post_init__(self) -> None:
        self.node_type = self.torch.fx.Node

    def dtype_of(self, node_name: str) -> Any:
        """The element type of a value: the whole-graph run's if there was one, else what the
        measured node that made it gave, else ``None`` (float32, the activations' default)."""
        found = self.dtypes.get(node_name)
        return found if found is not None else self.seen_dtypes.get(node_name)

    def reset_dtypes(self, dtypes: dict[str, Any]) -> None:
        self.dtypes = dtypes
        self.seen_dtypes = {}

    def signature(self, node: Any, frontier: list[Any]) -> tuple | None:
        """A value equal for two nodes that torch computes alike from inputs of equal shapes and
        types: the same calls with the same constants, weights of the same shapes, the same
        module object; ``None`` when the node reads something not compared so (then it is
        measured on its own)."""
        place = {n: i for i, n in enumerate(frontier)}
        made: dict[Any, tuple] = {}
        try:
            return self._node_signature(node, place, made)
        except _Unshareable:
            return None

    def _node_signature(self, n: Any, place: dict[Any, int], made: dict[Any, tuple]) -> tuple:
        if n in place:
            return ("input", place[n])
        if n in made:
            return made[n]
        if n.op == "get_attr":
            sig = self._attr_signature(str(n.target))
        elif n.op == "placeholder" and n.args:  # a forward parameter left at its default
            sig = ("default", self._constant(n.args[0], place, made))
        elif n.op in ("call_function", "call_method", "call_module"):
            target = id(self.submodule(n.target)) if n.op == "call_module" else n.target
            sig = (n.op, target, self._constant(n.args, place, made),
                   self._constant(n.kwargs, place, made))
        else:
            raise _Unshareable
        made[n] = sig
        return sig

    def _attr_signature(self, target: str) -> tuple:
        """A weight's part of a signature: its shape, strides, type and whether it is trained
        (each weight is read once per analysis, though several blocks' nodes compare it)."""
        sig = self.attr_signatures.get(target)
        if sig is None:
            value = self.attr(target)
            if not isinstance(value, self.torch.Tensor):
                raise _Unshareable
            sig = self.attr_signatures[target] = (
                "attr", tuple(value.shape), tuple(value.stride()), value.dtype, value.requires_grad)
        return sig

    def _constant(self, value: Any, place: dict[Any, int], made: dict[Any, tuple]) -> Any:
        kind = type(value)
        # bool and int compare equal (True == 1): the type keeps them apart
        if kind in _PLAIN_TYPES:
            return (kind, value)
        if kind is self.node_type:
            return self._node_signature(value, place, made)
        if isinstance(value, (tuple, list)):
            return (kind.__name__, tuple([self._constant(v, place, made) for v in value]))
        if isinstance(value, dict):
            return ("dict", tuple([(k, self._constant(v, place, made)) for k, v in value.items()]))
        if kind is slice:
            return ("slice", self._constant(value.start, place, made),
                    self._constant(value.stop, place, made), self._constant(value.step, place, made))
        torch = self.torch
        if isinstance(value, _PLAIN) or isinstance(
                value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return (kind, value)
        if isinstance(value, torch.fx.Node):
            return self._node_signature(value, place, made)
        raise _Unshareable

    def submodule(self, path: str) -> Any:
        found = self.submodules.get(path)
        return found if found is not None else self.root.get_submodule(path)

    def is_tensor(self, value: Any) -> bool:
        return isinstance(value, self.torch.fx.Node) and self.kind.get(value) is ValueKind.TENSOR

    def is_tuple(self, value: Any) -> bool:
        return isinstance(value, self.torch.fx.Node) and self.kind.get(value) is ValueKind.TUPLE

    def arg_nodes(self, node: Any) -> list[Any]:
        """The fx nodes ``node`` reads, each once, in argument order (fx keeps this list)."""
        return node.all_input_nodes

    # Both walks below use an explicit stack: a recursive closure per call would be a
    # reference cycle (the function holds its own cell) that only the cyclic collector frees.
    def frontier(self, node: Any) -> list[Any]:
        """Tensor nodes this node reads, looking through int/tuple/const values."""
        out: list[Any] = []
        seen: set[Any] = set()
        stack = list(reversed(self.arg_nodes(node)))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if self.kind.get(n) is ValueKind.TENSOR:
                out.append(n)
                continue
            stack.extend(reversed(self.arg_nodes(n)))
        return out

    def param_reads(self, node: Any) -> list[int]:
        """Ids of the parameters a node reads through ``get_attr`` (directly or via consts)."""
        found: list[int] = []
        seen: set[Any] = set()
        Parameter = self.torch.nn.Parameter
        stack = list(reversed(self.arg_nodes(node)))
        while stack:
            n = stack.pop()
            if n in seen or self.kind.get(n) is ValueKind.TENSOR:
                continue
            seen.add(n)
            if n.op == "get_attr":
                value = self.attr(str(n.target))
                if type(value) is Parameter or isinstance(value, Parameter):
                    found.append(id(value))
                continue
            if n.op == "call_module":  # a module's tuple: its weights go with its first item
                continue
            stack.extend(reversed(self.arg_nodes(n)))
        return found

    def attr(self, target: str) -> Any:
        """The parameter, buffer or constant at ``target`` (``None`` if there is none); each
        path is walked once (``nn.Module.__getattr__`` is slow, and every weight is read
        twice: for its shape and for who owns it)."""
        found = self.attrs.get(target, self)
        if found is self:
            found = self.root
            for part in target.split("."):
                found = getattr(found, part, None)
            self.attrs[target] = found
        return found

    def tuple_root(self, node: Any) -> Any:
        """The value a tuple item comes from: ``lstm`` for ``lstm(x)[1][0]``."""
        while fx_ops.op_name(node) == "getitem" and self.is_tuple(node.args[0]):
            node = node.args[0]
        return node

    def live(self, nodes: list[Any], ends: Any) -> set[Any]:
        """fx nodes that ``ends`` (the output, the items modules return) depend on: a dead
        value, such as an unused LSTM state, gets no row. ``nodes`` are the graph's in order,
        ``ends`` among them: a node reads only nodes before it, so one pass from the last node
        back finds them all (a search from the ends visited every edge in Python)."""
        found = set(ends)
        for n in reversed(nodes):
            if n in found:
                found.update(n.all_input_nodes)
        return found

    def shape_args(self, source: Any, rest: tuple) -> tuple[int, ...] | None:
        """``view(x.size(0), -1)`` → ``(0, -1)``: a dim read from the same input at the same place."""
        if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
            rest = tuple(rest[0])
        shape: list[int] = []
        for pos, value in enumerate(rest):
            if isinstance(value, int) and not isinstance(value, bool):
                if value == 0:
                    return None  # a literal 0 would mean "copy" to Reshape; let torch decide
                shape.append(value)
            elif self.dim_of(value, source) == pos:
                shape.append(0)
            else:
                return None
        return tuple(shape) if shape else None

    def dim_of(self, value: Any, source: Any) -> int | None:
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


__all__ = ["FxValues", "ValueKind"]
