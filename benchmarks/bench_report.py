"""Time the HTML report of a model: the engine's part (analysis, page, graph layout data) and
Graphviz's part (`dot` laying out and drawing the SVG), measured separately.

Run: python benchmarks/bench_report.py [MODEL] [--runs N]   (default resnet50, 5 runs)
The issue's target: under 1 s of engine time for resnet50, plus graphviz.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet50")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from shapecalc import analyze
    from shapecalc.output.dot import build_graph, pipe
    from shapecalc.output.html import report_data, to_report

    parts: dict[str, list[float]] = {"analysis": [], "page (no graph)": [], "graph layout data": [],
                                     "dot (SVG)": [], "whole report": []}
    size = 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        analysis = analyze(args.model)
        t1 = time.perf_counter()
        to_report(analysis, graph=False)
        t2 = time.perf_counter()
        digraph, ids = build_graph(analysis)
        report_data(analysis, ids)
        t3 = time.perf_counter()
        pipe(digraph, "svg")
        t4 = time.perf_counter()
        size = len(to_report(analysis).encode("utf-8"))
        t5 = time.perf_counter()
        for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            parts[key].append(value)
    print(f"report of {args.model}, medians of {args.runs} runs")
    for key, values in parts.items():
        print(f"  {key:<20} {statistics.median(values) * 1000:8.1f} ms")
    engine = sum(statistics.median(parts[k]) for k in ("analysis", "page (no graph)", "graph layout data"))
    print(f"  engine total         {engine * 1000:8.1f} ms  (target < 1000 ms: {'met' if engine < 1 else 'MISSED'})")
    print(f"  file size            {size / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
