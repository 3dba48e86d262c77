"""Which square input sizes make a whole model fit: the one module that answers it.

:func:`minimum_input` (the smallest size, the library's ``shapecalc.minimum_input``) scans
sizes one by one: fit need not be monotone in the size once branches must agree or a Linear
wants one exact count, so no bisection is trusted there, and the engine makes a scan cheap.

``shapecalc check`` proposes an input size when a model does not fit. Trying sizes one by one
is fine near the given size, but a kernel of 10,000,000 or a Linear that no size can satisfy
would keep such a scan busy for minutes. So the search has three parts, all under one
CPU-time budget, and every size it returns has passed the WHOLE model (never only the node
that failed):

1. **near**: sizes n0 ± 1, n0 ± 2, … (the smallest change first), for part of the budget;
2. **grow**: while the model refuses because a window does not fit (``Reason.TOO_SMALL``),
   double the size, then scan the last doubling for the smallest size that fits (bisect it
   only when it spans more than :data:`SCAN_SPAN` sizes, where every window is far past fitting);
3. **features**: a Linear that receives the wrong number of features gets that number from a
   non-decreasing function of the size, so bisection finds the sizes that give exactly the
   expected count, or proves that none does.

Each part gets its own slice of time, so a slow near scan cannot starve the analytic parts.
When a slice runs out the search says so (``stopped``), and what it covered (``searched``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from shapecalc.core.arithmetic.inverse import first_true
from shapecalc.core.errors import LayerError, Reason, ShapeError
from shapecalc.core.graph import Analysis, Graph, analyze_graph, input_list
from shapecalc.core.layers import Shape
from shapecalc.diagnose.batch import BatchFold, keeps_batch
from shapecalc.models.api import load_model

#: Budget of each analytic part (grow, features), in seconds of this process's CPU time: CPU
#: time, not wall-clock, so that a busy machine changes how long the search takes but not what
#: it finds (the same model always gets the same proposal).
SEARCH_SECONDS = 2.0
#: Part of that budget the near scan (and the walk along a run of fitting sizes) may use.
NEAR_SHARE = 0.5
#: Largest size the search considers (a size is a Python int; this keeps bisection short).
MAX_SIZE = 1 << 40
#: Most sizes scanned one by one (``minimum_input``'s limit, ``grow``'s last doubling).
SCAN_SPAN = 4096


def sized(template: Shape, n: int) -> Shape:
    """``template`` with every spatial size set to ``n``."""
    return tuple(template[:2]) + (n,) * (len(template) - 2)


def sized_inputs(shapes: Sequence[Shape], which: Iterable[int], n: int) -> list[Shape]:
    """Every input's shape, those numbered ``which`` (0-based) resized to ``n`` (:func:`sized`)."""
    chosen = set(which)
    return [sized(s, n) if i in chosen else tuple(s) for i, s in enumerate(shapes)]


def smallest_input(graph: Graph, template: Shape, limit: int = SCAN_SPAN) -> int | None:
    """The smallest square (cubic, …) spatial size that the whole graph accepts, scanning up."""
    for n in range(1, limit + 1):
        try:
            analyze_graph(graph, sized(template, n))
            return n
        except ShapeError:
            continue
    return None


def minimum_input(model: Any, input_shape: Shape | None = None) -> int | None:
    """Smallest square spatial size the model accepts (``None`` if none up to 4096).

    Raises :class:`~shapecalc.core.errors.ConfigError` when a layer's own arguments are invalid
    (no size can help) and :class:`~shapecalc.core.errors.SpecError` for a model recorded at one size.
    """
    src = load_model(model)
    shape = src.input_shape(input_shape)
    src.require_scannable("other input sizes")
    return smallest_input(src.graph_at(shape), shape)


@dataclass
class SizeRun:
    """A size that fits, the contiguous run of fitting sizes around it, and whether the run was
    cut off while still fitting (``open_ended``)."""

    size: int
    low: int
    high: int
    open_ended: bool = False


class SizeSearch:
    """The sizes tried for one model and template, each analysed at most once.

    ``inputs`` is the model's input shape, or every input's shape for a forward that takes
    several; ``which`` numbers the inputs (0-based) set to each size tried, together (a
    siamese pair keeps its two images the same size); the others keep their shapes.
    """

    def __init__(self, graph: Graph, inputs, seconds: float = SEARCH_SECONDS,
                 which: Sequence[int] = (0,)) -> None:
        self.graph = graph
        self.inputs = input_list(inputs)
        self.which = tuple(which)
        self.template = self.inputs[self.which[0]]
        self.seconds = seconds
        self.started = time.process_time()  # of the current part
        self.stopped = False
        self.low_seen = self.high_seen = self.template[2] if len(self.template) > 2 else 1
        self._tried: dict[int, Analysis | LayerError] = {}
        self._keeps: dict[int, bool] = {}

    # ---------------------------------------------------------------- one size
    def outcome(self, n: int) -> Analysis | LayerError:
        """The analysis at size ``n``, or the error that stopped it."""
        if n not in self._tried:
            try:
                self._tried[n] = analyze_graph(self.graph, self.at(n))
            except LayerError as err:
                self._tried[n] = err
            self.low_seen, self.high_seen = min(self.low_seen, n), max(self.high_seen, n)
        return self._tried[n]

    def at(self, n: int) -> list[Shape]:
        """Every input's shape when the chosen inputs are ``n`` wide."""
        return sized_inputs(self.inputs, self.which, n)

    def fits(self, n: int) -> bool:
        """Whether the model fits at size ``n`` and keeps the batch there (a ``view(-1, 400)``
        "fits" many sizes by folding pixels into the batch: those are no fix)."""
        result = self.outcome(n)
        if not isinstance(result, Analysis):
            return False
        if n not in self._keeps:
            self._keeps[n] = not isinstance(keeps_batch(self.graph, self.at(n), result), BatchFold)
        return self._keeps[n]

    def _part(self) -> None:
        self.started = time.process_time()

    def out_of_time(self, share: float = 1.0) -> bool:
        """Whether ``share`` of the current part's budget is spent; spending all of an analytic
        part's budget marks the search stopped."""
        if time.process_time() - self.started <= self.seconds * share:
            return False
        if share >= 1.0:
            self.stopped = True
        return True

    @property
    def searched(self) -> str:
        """What was covered, for a message: ``"tried sizes 1 to 8,192"`` (and when it stopped)."""
        text = f"tried sizes {self.low_seen:,} to {self.high_seen:,}"
        return text + (f", stopped after {self.seconds:g} s" if self.stopped else "")

    # ---------------------------------------------------------------- the three parts
    def nearest(self, n0: int, limit: int) -> int | None:
        """The fitting size closest to ``n0`` within ``limit`` either way (smaller first)."""
        self._part()
        for delta in range(1, limit):
            if self.out_of_time(NEAR_SHARE):
                return None
            for n in (n0 - delta, n0 + delta):
                if 1 <= n <= MAX_SIZE and self.fits(n):
                    return n
        return None

    def grow(self, n0: int) -> int | None:
        """Double while windows do not fit, then find the smallest size that fits in the last
        doubling: scanned when short, bisected when longer than :data:`SCAN_SPAN`."""
        self._part()
        low, high = max(n0, 1), max(2 * n0, 2)
        while not self.fits(high):
            err = self.outcome(high)
            if not (isinstance(err, LayerError) and err.reason is Reason.TOO_SMALL):
                return None
            if high > MAX_SIZE or self.out_of_time():
                return None
            low, high = high, 2 * high
        if high - low <= SCAN_SPAN:
            for n in range(low + 1, high + 1):
                if self.out_of_time():
                    return None
                if self.fits(n):
                    return n
        return self._first(low, high, self.fits)

    def matching(self, n0: int, measure: Callable[[int], int | None], target: int) -> tuple[int, int] | None:
        """The run of sizes where ``measure`` (non-decreasing in the size; ``None`` while the
        size is too small to reach it) equals ``target``, or ``None`` if no size gives it (or
        the budget ran out first: then ``stopped`` is set)."""

        self._part()

        def value(n: int) -> int:
            got = measure(n)
            return -1 if got is None else got

        if value(n0) >= target:
            low, high = 0, n0
        else:
            low, high = n0, 2 * n0
            while value(high) < target:
                if high > MAX_SIZE or self.out_of_time():
                    return None
                low, high = high, 2 * high
        first = self._first(low, high, lambda n: value(n) >= target)
        if first is None or value(first) != target:
            return None
        low, high = first, 2 * first
        while value(high) <= target:
            if high > MAX_SIZE or self.out_of_time():
                return None
            low, high = high, 2 * high
        after = self._first(low, high, lambda n: value(n) > target)
        return (first, after - 1) if after is not None else None

    def run_around(self, n: int, limit: int) -> SizeRun:
        """The contiguous fitting sizes around ``n`` (checked one by one, up to ``limit`` above)."""
        self._part()
        low = high = n
        while low > 1 and not self.out_of_time(NEAR_SHARE) and self.fits(low - 1):
            low -= 1
            if n - low > limit:
                break
        open_ended = False
        while self.fits(high + 1):
            high += 1
            if high - n > limit or self.out_of_time(NEAR_SHARE):
                open_ended = True
                break
        return SizeRun(n, low, high, open_ended)

    def _first(self, low: int, high: int, ok: Callable[[int], bool]) -> int | None:
        """Smallest size in ``(low, high]`` with ``ok``, given ``ok(high)``, within the budget."""
        return first_true(low + 1, high, ok, self.out_of_time)


__all__ = ["MAX_SIZE", "SCAN_SPAN", "SEARCH_SECONDS", "SizeRun", "SizeSearch", "minimum_input", "sized",
           "sized_inputs", "smallest_input"]
