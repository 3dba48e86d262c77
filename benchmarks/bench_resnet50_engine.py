"""How fast the pure-Python engine analyses ResNet-50 (175 nodes, 3×224×224), without torch.

Prints milliseconds per analysis and microseconds per node for: building the graph from the
spec, the analysis pass alone, and the whole ``shapecalc.analyze("resnet50")`` call; then
checks that nothing imported torch. Figures only, no assertions on time (machines differ).

    python benchmarks/bench_resnet50_engine.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import time


def _time(fn, runs: int) -> list[float]:
    fn()  # warm-up: imports, caches
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(runs: int = 200) -> None:
    from shapecalc import analyze
    from shapecalc.core.graph import analyze_graph
    from shapecalc.models.zoo import get_entry

    entry = get_entry("resnet50")
    spec = entry.spec()
    graph = spec.to_graph("resnet50")
    nodes = len(graph.nodes)

    rows = [
        ("spec → graph", _time(lambda: spec.to_graph("resnet50"), runs)),
        ("analysis pass", _time(lambda: analyze_graph(graph, entry.default_input), runs)),
        ("analyze('resnet50')", _time(lambda: analyze("resnet50"), runs)),
    ]
    print(f"resnet50: {nodes} nodes, {len(graph.blocks)} blocks, input {entry.default_input}, {runs} runs")
    print(f"{'step':<22}{'median ms':>11}{'min ms':>9}{'µs/node':>10}")
    for name, times in rows:
        med = statistics.median(times)
        print(f"{name:<22}{med * 1e3:>11.3f}{min(times) * 1e3:>9.3f}{med * 1e6 / nodes:>10.2f}")
    print(f"torch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
