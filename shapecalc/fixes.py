"""A proposed fix as a typed value: what to change, where, to what; its text only for people.

``diagnose`` proposes fixes such as ``set in_features=6400`` or ``use input 225×225``. Each is a
:class:`Fix`: a ``str`` (so it prints, compares and serialises as the sentence users read) that
also carries ``kind``, ``node``, ``field``, ``value`` and ``size``, so code that wants to apply a
fix (``apply_fix``, the tests that re-verify every proposal) never parses the sentence.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from .graph import Graph, Node
from .layers import Layer, Shape


class FixKind(str, Enum):
    SET = "set"                # set ``field`` = ``value`` on the layer of ``node``
    INPUT = "input"            # use square input size ``size``
    PROJECTION = "projection"  # put ``layer`` (a 1×1 conv) on input number ``value`` of ``node``


class Fix(str):
    """One proposed change; ``str(fix)`` is its sentence."""

    kind: FixKind
    node: str | None
    field: str | None
    value: Any
    size: int | None
    layer: Layer | None

    def __new__(cls, text: str, kind: FixKind = FixKind.SET, node: str | None = None,
                field: str | None = None, value: Any = None, size: int | None = None,
                layer: Layer | None = None) -> "Fix":
        fix = super().__new__(cls, text)
        fix.kind, fix.node, fix.field, fix.value, fix.size, fix.layer = kind, node, field, value, size, layer
        return fix

    def details(self) -> dict[str, Any]:
        """JSON form of the typed part (the sentence is the string itself)."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"kind": self.kind.value, "node": self.node, "field": self.field, "value": value,
                "size": self.size, "layer": self.layer.describe() if self.layer else None,
                "text": str(self)}


def apply_fix(graph: Graph, shape: Shape, fix: Fix) -> tuple[Graph, Shape]:
    """The graph and input shape with ``fix`` applied (to re-check it, or to try it)."""
    if fix.kind is FixKind.INPUT:
        assert fix.size is not None
        return graph, tuple(shape[:2]) + (fix.size,) * (len(shape) - 2)
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.name != fix.node:
            nodes.append(node)
            continue
        if fix.kind is FixKind.SET:
            nodes.append(dataclasses.replace(node, layer=dataclasses.replace(node.layer, **{fix.field: fix.value})))
            continue
        # PROJECTION: ``fix.layer`` on input number ``fix.value`` of the merge node.
        assert fix.layer is not None
        name = f"{node.name}.shortcut"
        while any(n.name == name for n in graph.nodes):
            name += "_"
        nodes.append(Node(name, fix.layer, (node.inputs[fix.value],)))
        inputs = list(node.inputs)
        inputs[fix.value] = name
        nodes.append(dataclasses.replace(node, inputs=tuple(inputs)))
    return Graph(graph.name, nodes, graph.output, graph.blocks, graph.input_name), tuple(shape)


__all__ = ["Fix", "FixKind", "apply_fix"]
