"""``diagnose`` on inputs no search could walk: answered by arithmetic and proof, not a scan.

Two cases that tests check for the right answer and this script times (a timed assertion in a
test fails on a loaded machine: the first took 43.8 s against a 10 s limit under load, 3.7 s
alone; issue 21):

* a Linear whose 9215 features no square input gives, at 100,000×100,000: proved impossible;
* a 10,000,000-wide kernel at 224×224: the smallest input that fits, found by arithmetic.

Run: ``python benchmarks/bench_diagnose_unsatisfiable.py``. Measured 4.0 s and 1.1 s (best of
3, 2 shared cores under load, 2026-12-02); the first was 3.7 s alone, 43.8 s under heavier load.
"""

from __future__ import annotations

import time

from shapecalc.core.blocks import Sequential
from shapecalc.core.layers import Conv2d, Flatten, Linear, MaxPool2d
from shapecalc.diagnose import diagnose

CASES = {
    "Linear(9215) at 100000x100000": (
        Sequential(Conv2d(3, 8, 3), MaxPool2d(2), Flatten(), Linear(9215, 10)), (1, 3, 100_000, 100_000)),
    "Conv2d(k=10,000,000) at 224x224": (Sequential(Conv2d(3, 8, 10_000_000)), (1, 3, 224, 224)),
}


def main() -> None:
    for label, (model, shape) in CASES.items():
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            result = diagnose(model, shape)
            best = min(best, time.perf_counter() - start)
        print(f"{label:34s} {best * 1000:9.1f} ms   {result.searched or result.fixes[-1]}")


if __name__ == "__main__":
    main()
