"""Which input sizes a model accepts, and which of them keep every pixel ("exact").

``shapecalc check MODEL --input-range 32..512`` answers from here: one engine pass per size,
microseconds to milliseconds each, so a scan of a zoo model usually takes about a second. A deep
model over thousands of sizes could take minutes, so the scan has a time budget
(:data:`SCAN_SECONDS`): when it runs out, the result says where it stopped (``stopped_at``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shapecalc.models.api import load_model
from shapecalc.core.errors import ArgumentError, ShapeError
from shapecalc.core.graph import analyze_graph
from shapecalc.core.layers import Shape
from shapecalc.models.model_source import size_arg
from shapecalc.core.notes import NoteKind, has_kind
from shapecalc.core.registry import SCAN, show
from shapecalc.diagnose.batch import BatchFold, keeps_batch
from shapecalc.diagnose.size_search import sized

#: Wall-clock budget of one scan, in seconds.
SCAN_SECONDS = 10.0


@dataclass
class InputScan:
    """Which square input sizes a model accepts, and which of them keep every pixel ("exact")."""

    model: str
    template: Shape
    low: int
    high: int
    exact: list[int]
    drops: list[int]
    fails: dict[str, list[int]]  # first failing node → sizes
    #: The first size NOT scanned when the time budget ran out (``None``: the whole range).
    stopped_at: int | None = None
    #: Sizes that run but do not keep the batch (``view(-1, 400)``): the folding node → sizes.
    #: They are not among ``fits``.
    folds: dict[str, list[int]] = field(default_factory=dict)
    #: The wall-clock budget the scan ran under, in seconds.
    budget_seconds: float = SCAN_SECONDS

    @property
    def fits(self) -> list[int]:
        return sorted(self.exact + self.drops)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "template": list(self.template[:2]) + ["N"] * (len(self.template) - 2),
            "range": [self.low, self.high],
            "fits": runs(self.fits), "exact": self.exact, "drops": runs(self.drops),
            "fails": {k: runs(v) for k, v in self.fails.items()},
            "folds_batch": {k: runs(v) for k, v in self.folds.items()},
            "stopped_at": self.stopped_at,
        }

    # Display: worded by the diagnosis renderer (shapecalc.output.diagnosis), as check prints it.
    def __str__(self) -> str:
        return show(SCAN, self, "text")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self) if cycle else str(self))


def scan_inputs(model: Any, template: Shape | None, low: int, high: int) -> InputScan:
    """Analyse ``model`` at every square size ``low..high``.

    A :class:`~shapecalc.core.errors.ConfigError` (a layer's own arguments are invalid) stops the
    scan at once: no size can fix it, so trying thousands would only repeat it.
    """
    src = load_model(model)
    template = src.input_shape(template, "template")
    low, high = size_arg(low, "low"), size_arg(high, "high")
    if high < low:
        raise ArgumentError("high", f"must be ≥ low ({low}), got {high}")
    src.require_scannable("an input range")
    graph = src.graph_at(template)
    exact: list[int] = []
    drops: list[int] = []
    fails: dict[str, list[int]] = {}
    folds: dict[str, list[int]] = {}
    deadline = time.monotonic() + SCAN_SECONDS
    stopped_at = None
    for n in range(low, high + 1):
        if n > low and time.monotonic() > deadline:
            stopped_at = n
            break
        try:
            result = analyze_graph(graph, sized(template, n))
        except ShapeError as err:
            fails.setdefault(err.node or "?", []).append(n)
            continue
        fold = keeps_batch(graph, sized(template, n), result)
        if isinstance(fold, BatchFold):
            folds.setdefault(fold.node, []).append(n)
            continue
        if any(has_kind(r.notes, NoteKind.DROPS) for r in result.records):
            drops.append(n)
        else:
            exact.append(n)
    return InputScan(src.name, template, low, high, exact, drops, fails, stopped_at, folds, SCAN_SECONDS)


def runs(values: list[int]) -> list[list[int]]:
    """``[1, 2, 3, 7, 8]`` → ``[[1, 3], [7, 8]]``."""
    out: list[list[int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def compact(values: list[int]) -> str:
    """Human form of a set of sizes: ranges, or an arithmetic progression written as such."""
    if not values:
        return "none"
    if len(values) >= 4:
        step = values[1] - values[0]
        if step > 1 and all(b - a == step for a, b in zip(values, values[1:])):
            return f"{values[0]}, {values[1]}, …, {values[-1]} (every {step})"
    parts = [f"{a}" if a == b else f"{a}–{b}" for a, b in runs(values)]
    if len(parts) > 12:
        parts = parts[:12] + [f"… ({len(parts) - 12} more runs)"]
    return ", ".join(parts)


__all__ = ["InputScan", "compact", "runs", "scan_inputs"]
