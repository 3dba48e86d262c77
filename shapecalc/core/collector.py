"""Pausing Python's cyclic garbage collector while a model is read and analysed.

Reading a model allocates tens of thousands of objects that all stay alive until the analysis
ends (torch.fx nodes and proxies, layer specs, records), and torch itself keeps a large heap.
The cyclic collector runs every few hundred allocations and, as survivors pile up, rescans
that whole heap: on 1,000 residual blocks it was half of ``shapecalc.analyze``'s time
(``benchmarks/bench_trace_depth.py``), while finding almost nothing to free. Reference
counting still frees every acyclic object at once; the few cycles made meanwhile wait for
the next collection after the pause. The work inside is bounded (node budgets, CPU-time
budgets), so the memory held back is too. The young generation is collected once when the
outermost pause ends, so that work is paid by the call that caused it, not by whatever code
allocates next (a benchmark's next contender, say).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_collector() -> Iterator[None]:
    """No cyclic collection inside; the collector's state before is restored after.

    Nested pauses are free: only the outermost one, which found the collector running,
    starts it again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


__all__ = ["paused_collector"]
