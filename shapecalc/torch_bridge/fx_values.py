"""Reading an fx graph's values: what a node reads through scalars and constants.

Shared by the converter (which tensors feed a node, which parameters it reads, which tuple an
item comes from, which values the output depends on) and by measured nodes, which re-evaluate
a node from exactly the tensors :meth:`FxValues.frontier` names.
"""

from __future__ import annotations

from typing import Any

from . import fx_ops


class FxValues:
    """Mixin over ``self.torch``, ``self.root`` (the traced module), ``self.kind`` (fx node → kind) and ``self.ledger``."""

    torch: Any
    root: Any
    kind: dict
    ledger: Any

    def _arg_nodes(self, node: Any) -> list[Any]:
        """The fx nodes ``node`` reads, each once, in argument order (fx keeps this list)."""
        return node.all_input_nodes

    def frontier(self, node: Any) -> list[Any]:
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

    def _param_reads(self, node: Any) -> list[int]:
        """Ids of the parameters a node reads through ``get_attr`` (directly or via consts)."""
        found: list[int] = []
        seen: set[Any] = set()
        Parameter = self.torch.nn.Parameter

        def visit(n: Any) -> None:
            if n in seen or self.kind.get(n) == "tensor":
                return
            seen.add(n)
            if n.op == "get_attr":
                value = self._attr(str(n.target))
                if isinstance(value, Parameter):
                    found.append(id(value))
                return
            if n.op == "call_module":  # a module's tuple: its weights go with its first item
                return
            for a in self._arg_nodes(n):
                visit(a)

        for a in self._arg_nodes(node):
            visit(a)
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
