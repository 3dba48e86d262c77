"""Reading an fx graph's values: what a node reads through scalars and constants, and which
dims of a tensor a ``view(x.size(0), -1)`` copies.

Shared by the converter (which tensors feed a node, which parameters it reads, which tuple an
item comes from, which values the output depends on) and by measured nodes, which re-evaluate
a node from exactly the tensors :meth:`FxValues.frontier` names.
"""

from __future__ import annotations

from typing import Any

from shapecalc.torch_bridge import fx_ops


class FxValues:
    """Mixin over ``self.torch``, ``self.root`` (the traced module), ``self.kind`` (fx node →
    kind) and ``self.ledger``."""

    torch: Any
    root: Any
    kind: dict
    ledger: Any

    def _arg_nodes(self, node: Any) -> list[Any]:
        """The fx nodes ``node`` reads, each once, in argument order (fx keeps this list)."""
        return node.all_input_nodes

    # Both walks below use an explicit stack: a recursive closure per call would be a
    # reference cycle (the function holds its own cell) that only the cyclic collector frees.
    def frontier(self, node: Any) -> list[Any]:
        """Tensor nodes this node reads, looking through int/tuple/const values."""
        out: list[Any] = []
        seen: set[Any] = set()
        stack = list(reversed(self._arg_nodes(node)))
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if self.kind.get(n) == "tensor":
                out.append(n)
                continue
            stack.extend(reversed(self._arg_nodes(n)))
        return out

    def _param_reads(self, node: Any) -> list[int]:
        """Ids of the parameters a node reads through ``get_attr`` (directly or via consts)."""
        found: list[int] = []
        seen: set[Any] = set()
        Parameter = self.torch.nn.Parameter
        stack = list(reversed(self._arg_nodes(node)))
        while stack:
            n = stack.pop()
            if n in seen or self.kind.get(n) == "tensor":
                continue
            seen.add(n)
            if n.op == "get_attr":
                value = self._attr(str(n.target))
                if isinstance(value, Parameter):
                    found.append(id(value))
                continue
            if n.op == "call_module":  # a module's tuple: its weights go with its first item
                continue
            stack.extend(reversed(self._arg_nodes(n)))
        return found

    def _attr(self, target: str) -> Any:
        value = self.root
        for part in target.split("."):
            value = getattr(value, part, None)
        return value

    def _tuple_root(self, node: Any) -> Any:
        """The value a tuple item comes from: ``lstm`` for ``lstm(x)[1][0]``."""
        while fx_ops.op_name(node) == "getitem" and self.kind.get(node.args[0]) == "tuple":
            node = node.args[0]
        return node

    def _live(self, out_node: Any) -> set[Any]:
        """fx nodes the output depends on (a dead value, such as an unused LSTM state, gets no row)."""
        live: set[Any] = set()
        stack = [out_node]
        while stack:
            n = stack.pop()
            if n in live:
                continue
            live.add(n)
            stack.extend(self._arg_nodes(n))
        return live

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
