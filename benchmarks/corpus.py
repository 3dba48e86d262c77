"""The whole real-model corpus (tests/corpus/real.py): every figure checked, and timed against torchinfo.

For each of the 57 timm architectures and 11 transformers models: parameters, every output
and MACs against torch (``corpus.real.check``: MACs within -1 % / +5 % of FlopCounterMode ÷ 2),
then shapecalc's in-process analysis (``shapecalc.analyze``, no forward on real data) against
``torchinfo.summary`` (a real forward), side by side on the same model, one torch thread, best
of ``--runs`` each, the two run in turn. Prints a Markdown table (docs/performance.md's) and the
median and worst ratios.

Run: ``python benchmarks/corpus.py [--runs 3] [--only NAME ...]``
(from the checkout; ``tests/`` is put on the path for the corpus and the CPU torchvision step).
Targets (issue 16): median time ratio ≤ 0.5, none over 2.
"""

from __future__ import annotations

import argparse
import logging
import runpy
import statistics
import sys
import time
import warnings
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))
runpy.run_path(str(TESTS / "cpu_torchvision" / "sitecustomize.py"))  # timm imports torchvision


def best_of_each(runs: int, *fns) -> list[float]:
    """The best of ``runs`` times of each of ``fns``, run in turn (one of each, then again):
    a burst of load on the machine lands on both sides alike, not on the three runs of one."""
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="corpus names to run")
    args = parser.parse_args()

    import torch
    from torchinfo import summary

    import shapecalc
    from corpus import real

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    rows, ratios, failures = [], [], 0
    for entry in real.entries(tuple(args.only) if args.only else None):
        model = entry.build().eval()
        outcome = real.check(entry, model)
        shapes = entry.shapes if len(entry.shapes) > 1 else entry.shapes[0]
        xs = real.inputs(entry)
        ours, theirs = best_of_each(
            args.runs, lambda: shapecalc.analyze(model, shapes, input_dtypes=entry.dtypes),
            lambda: summary(model, input_data=xs, verbose=0))
        ratio = ours / theirs
        ratios.append(ratio)
        failures += bool(outcome.problems)
        status = "✓" if not outcome.problems else "✗ " + "; ".join(outcome.problems)
        rows.append(f"| {entry.name} | {entry.family} | {outcome.route} | {outcome.params:,} | "
                    f"{outcome.macs:,} | {outcome.ratio:.4f} | {ours * 1000:.0f} | "
                    f"{theirs * 1000:.0f} | {ratio:.2f} | {status} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("| model | family | import | params (= torch) | MACs | ÷ FlopCounter/2 | shapecalc ms "
          "| torchinfo ms | time ratio | checks |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"\n{len(rows)} models, {failures} with a failed check; time ratio shapecalc/torchinfo: "
          f"median {statistics.median(ratios):.2f}, quartiles {quartiles[0]:.2f}/{quartiles[2]:.2f}, "
          f"worst {max(ratios):.2f} ({sum(r > 2 for r in ratios)} over 2)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
