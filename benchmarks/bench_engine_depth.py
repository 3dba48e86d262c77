"""The engine alone (``analyze_graph``) on synthetic chains of 10 to 10,000 layers.

The chain repeats conv 3×3 (padding 1) → BatchNorm → ReLU, which keeps every shape valid at
any depth, so the time measured is the analysis pass and nothing else. A flat µs-per-layer
column across four orders of magnitude is the linearity claim.

Run: ``python benchmarks/bench_engine_depth.py``     Target (issue 2): < 20 µs per layer.
"""

from __future__ import annotations

import sys
import time

from shapecalc.core.graph import GraphBuilder, analyze_graph
from shapecalc.core.layers import BatchNorm2d, Conv2d, ReLU

CHANNELS = 16
INPUT = (1, CHANNELS, 32, 32)


def chain(depth: int):
    builder = GraphBuilder(f"chain{depth}")
    kinds = (lambda: Conv2d(CHANNELS, CHANNELS, 3, padding=1), lambda: BatchNorm2d(CHANNELS), ReLU)
    source = builder.input_name
    for i in range(depth):
        source = builder.add(f"l{i}", kinds[i % 3](), (source,))
    return builder.finish(source)


def best_times(graph, repeats: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of one analysis. CPU time is the engine's own cost; on a
    shared machine the wall clock also counts time spent waiting for a core."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        analyze_graph(graph, INPUT)
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    print(f"analyze_graph on conv/bn/relu chains, input {'×'.join(map(str, INPUT))}, "
          f"python {sys.version.split()[0]} (best of several runs)")
    print(f"{'layers':>8}{'wall':>12}{'wall/layer':>13}{'CPU/layer':>12}")
    per_layer = []
    for depth in (10, 100, 1000, 10000):
        graph = chain(depth)
        result = analyze_graph(graph, INPUT)
        assert len(result.records) == depth and result.output_shape == INPUT
        wall, cpu = best_times(graph, repeats=max(5, 20000 // depth))
        per_layer.append(cpu / depth * 1e6)
        print(f"{depth:>8}{wall * 1e3:>10.2f} ms{wall / depth * 1e6:>10.2f} µs{per_layer[-1]:>9.2f} µs")
    spread = max(per_layer[1:]) / min(per_layer[1:])
    print(f"CPU µs/layer spread from 100 to 10,000 layers: {spread:.2f}× (1.0 = perfectly linear)")
    print(f"target < 20 µs/layer (CPU): {'met' if max(per_layer) < 20 else 'NOT met'}")

if __name__ == "__main__":
    main()
