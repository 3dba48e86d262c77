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

from shapecalc.core.graph import Graph, Node, input_list
from shapecalc.core.layers import Layer
from shapecalc.diagnose.size_search import sized_inputs


class FixKind(str, Enum):
    SET = "set"                # set ``field`` = ``value`` on the layer of ``node``
    INPUT = "input"            # use square input size ``size`` (on the inputs numbered ``value``)
    PROJECTION = "projection"  # put ``layer`` (a 1×1 conv) on input number ``value`` of ``node``


class Fix(str):
    """One proposed change; ``str(fix)`` is its sentence."""

    kind: FixKind
    node: str | None
    field: str | None
    value: Any
    size: int | None
    layer: Layer | None
    #: Further changes made together with this one (a flatten(1) and the Linear after it).
    also: tuple["Fix", ...]

    def __new__(cls, text: str, kind: FixKind = FixKind.SET, node: str | None = None,
                field: str | None = None, value: Any = None, size: int | None = None,
                layer: Layer | None = None, also: tuple["Fix", ...] = ()) -> "Fix":
        fix = super().__new__(cls, text)
        fix.kind, fix.node, fix.field, fix.value, fix.size, fix.layer = kind, node, field, value, size, layer
        fix.also = tuple(also)
        return fix

    def details(self) -> dict[str, Any]:
        """JSON form of the typed part (the sentence is the string itself)."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"kind": self.kind.value, "node": self.node, "field": self.field, "value": value,
                "size": self.size, "layer": self.layer.describe() if self.layer else None,
                "text": str(self), "also": [f.details() for f in self.also]}


def fixed_input(shape: Any, fix: Fix) -> Any:
    """The input shape (or list of every input's shape) once the input-size ``fix`` is made:
    the inputs its ``value`` numbers (0-based) resized, or the only input when it is ``None``."""
    assert fix.kind is FixKind.INPUT and fix.size is not None
    several = bool(shape) and isinstance(shape[0], (tuple, list))
    shapes = input_list(shape)
    resized = sized_inputs(shapes, range(len(shapes)) if fix.value is None else fix.value, fix.size)
    return resized if several else resized[0]


def apply_fix(graph: Graph, shape: Any, fix: Fix) -> tuple[Graph, Any]:
    """The graph and input shape with ``fix`` applied (to re-check it, or to try it).

    ``shape`` is the model's input shape, or a list of every input's shape for a forward that
    takes several; the answer has the same form (see :func:`fixed_input`).
    """
    for first in fix.also:
        graph, shape = apply_fix(graph, shape, first)
    if fix.kind is FixKind.INPUT:
        return graph, fixed_input(shape, fix)
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
    # Everything else about the graph (its further inputs, outputs, labels) stays as it was.
    return dataclasses.replace(graph, nodes=nodes), shape


__all__ = ["Fix", "FixKind", "apply_fix", "fixed_input"]
