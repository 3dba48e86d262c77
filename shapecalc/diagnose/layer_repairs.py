"""Edits of a model's layers that make it fit, each verified through the whole model.

:mod:`shapecalc.diagnose.diagnosis` explains a failure and asks here for the layer edits that repair
it: for a merge whose inputs disagree, single-argument edits (stride, padding, out_channels)
of the layers on one branch only, or a 1×1 projection on an identity shortcut; for a layer
that cannot take its input, edits of its own padding or stride. ``case`` is the failure being
explained (:class:`~shapecalc.diagnose.failure_case.FailureCase`): every candidate goes through
``case.verified``, so a fix printed is one with which the WHOLE model fits, never one that
fails further down.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator

from shapecalc.diagnose.fixes import Fix, FixKind
from shapecalc.core.graph import Graph
from shapecalc.core.arithmetic import Window
from shapecalc.core.layers import LAYER_TYPES, Layer, Shape, format_shape


def ancestors(graph: Graph, name: str) -> set[str]:
    """Every node and graph input that ``name``'s value is computed from."""
    by_name = {n.name: n for n in graph.nodes}
    seen: set[str] = set()
    if name not in by_name:  # a graph input has no ancestors
        return seen
    stack = list(by_name[name].inputs)
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur in by_name:
            stack.extend(by_name[cur].inputs)
    return seen


def merge_fixes(diag: Any, case: Any) -> None:
    graph, node, inputs = case.graph, case.node, case.inputs
    what = "concatenation" if node.layer.type_name == "Concat" else "residual add"
    parts = [f"{format_shape(s)} from '{i}'" for i, s in zip(node.inputs, inputs)]
    diag.problem = f"the {what} '{node.name}' gets {' and '.join(parts)} {case.at}"
    diag.expected = "matching shapes" if what == "residual add" else "equal sizes except along the concat dim"
    diag.got = " and ".join(format_shape(s) for s in inputs)
    fixes: list[tuple[int, Fix]] = []
    branches = [ancestors(graph, i) | {i} for i in node.inputs]
    common = set.intersection(*branches) if branches else set()
    for b, branch in enumerate(branches):
        exclusive = [n for n in graph.nodes if n.name in branch and n.name not in common]
        for cand in exclusive:
            for variant in _variants(cand.layer, inputs[1 - b] if len(inputs) == 2 else None):
                if case.out_of_time():
                    break
                fix = Fix(f"set {variant} on '{cand.name}' ({cand.layer.describe()})", FixKind.SET,
                          cand.name, variant.arg, variant.value)
                if case.verified(fix):
                    fixes.append((variant.cost, fix))
        if not exclusive and len(inputs) == 2 and len(inputs[b]) >= 3:  # an identity shortcut
            fixes.extend(_shortcut_fix(case, b))
    fixes.sort(key=lambda f: f[0])
    seen: list[Fix] = []
    for _, fix in fixes:
        if fix not in seen:
            seen.append(fix)
    diag.fixes.extend(seen[:3])


def _shortcut_fix(case: Any, b: int) -> list[tuple[int, Fix]]:
    """A 1×1 projection on the identity input ``b`` of a two-input merge, verified by inserting
    it into the graph and analysing the whole model."""
    side, main, name = case.inputs[b], case.inputs[1 - b], case.node.inputs[b]
    spatial_side, spatial_main = side[2:], main[2:]
    if len(spatial_side) != len(spatial_main) or not all(m and s % m == 0 for s, m in zip(spatial_side, spatial_main)):
        return []
    ratios = {s // m for s, m in zip(spatial_side, spatial_main)}
    if len(ratios) != 1:
        return []
    stride = ratios.pop()
    conv = f"Conv{len(spatial_side)}d"
    projection = LAYER_TYPES[conv](side[1], main[1], 1, stride=stride)
    stride_text = f", stride={stride}" if stride != 1 else ""
    fix = Fix(f"give the shortcut a {conv}({side[1]}, {main[1]}, kernel_size=1{stride_text}) "
              f"instead of the identity ('{name}' passes {format_shape(side)})",
              FixKind.PROJECTION, case.node.name, value=b, layer=projection)
    return [(5, fix)] if case.verified(fix) else []


@dataclass(frozen=True)
class _Variant:
    """One single-argument edit of a layer: ``arg=value`` at ``cost`` (smaller is closer)."""

    cost: int
    arg: str
    value: int

    def __str__(self) -> str:
        return f"{self.arg}={self.value}"


#: Most paddings tried per layer: an edit far from the layer's own padding is no small fix,
#: and a kernel of 10,000,000 must not mean 10,000,000 trials.
MAX_PADDING_TRIES = 32


def _variants(layer: Layer, other: Shape | None) -> Iterator[_Variant]:
    """Single-argument edits of a conv/pool layer, cheapest first."""
    fields = {f.name for f in dataclasses.fields(layer) if f.init} if dataclasses.is_dataclass(layer) else set()
    windows = getattr(layer, "windows", None)  # a conv or pool: its first axis's window
    window = windows[0] if windows else Window(3)
    if "stride" in fields and getattr(layer, "stride", None) is not None:
        current = window.s
        for s in range(1, 5):
            if s != current:
                yield _Variant(abs(s - current), "stride", s)
    if "padding" in fields and not isinstance(getattr(layer, "padding", 0), str):
        current, k = window.p_left, window.k
        for p in range(0, min(k, MAX_PADDING_TRIES) + 1):
            if p != current:
                yield _Variant(abs(p - current), "padding", p)
    if "out_channels" in fields and other is not None and len(other) >= 2:
        yield _Variant(1, "out_channels", other[1])


def local_repairs(diag: Any, case: Any) -> None:
    """Edits of the failing layer itself (padding, stride) that make the whole model fit."""
    best: dict[str, tuple[int, Fix]] = {}  # one fix per argument: the smallest change
    for variant in _variants(case.node.layer, None):
        if variant.arg == "out_channels" or case.out_of_time():
            continue
        if variant.arg in best and variant.cost >= best[variant.arg][0]:
            continue
        fix = Fix(f"set {variant}", FixKind.SET, case.node.name, variant.arg, variant.value)
        if case.verified(fix):
            best[variant.arg] = (variant.cost, fix)
    diag.fixes.extend(fix for _, fix in sorted(best.values(), key=lambda v: v[0]))


__all__ = ["ancestors", "local_repairs", "merge_fixes"]
