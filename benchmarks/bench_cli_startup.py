"""Whole-process time of the quick commands (``shapecalc layer``, ``shapecalc show alexnet``).

These commands are mostly Python start-up and imports, so a change that pulls in one more
module shows here first. Each command runs as a fresh process ``--runs`` times; with
``--against DIR`` (another checkout of the package, e.g. ``git archive`` of the previous
commit) both trees run interleaved, so machine load hits both alike, and the ratio of the
medians is printed. CPU time (user + system of the child, from ``os.wait4``) is reported
beside wall time because it is less sensitive to other processes on a shared machine.

Run: ``python benchmarks/bench_cli_startup.py [--runs 21] [--against /tmp/before]``
Target (issue 10): within 5% of the previous commit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "layer": ["layer", "--k", "11", "--s", "4", "--p", "2", "224"],
    "show alexnet": ["show", "alexnet"],
}


def run_once(root: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``python -m shapecalc ARGS`` with ``root`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(root), COLUMNS="120")
    # Bytecode is cached (and reused) as for an installed package: the warm-up run writes it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "shapecalc", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{root}: shapecalc {' '.join(args)} failed: {err.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--against", type=Path, help="another source tree to compare with")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    trees = {"this tree": here}
    if args.against is not None:
        trees["against"] = args.against.resolve()
    for root in trees.values():  # warm the bytecode caches, as an installed package has
        for cmd in COMMANDS.values():
            run_once(root, cmd)
    for name, cmd in COMMANDS.items():
        samples: dict[str, list[tuple[float, float]]] = {t: [] for t in trees}
        for _ in range(args.runs):
            for tree, root in trees.items():
                samples[tree].append(run_once(root, cmd))
        medians = {}
        for tree, values in samples.items():
            wall = statistics.median(w for w, _ in values)
            cpu = statistics.median(c for _, c in values)
            low = min(c for _, c in values)  # the least disturbed run, on a busy machine
            medians[tree] = (wall, cpu, low)
            print(f"shapecalc {name:<13} {tree:<10} wall {wall * 1e3:7.1f} ms   CPU {cpu * 1e3:7.1f} ms"
                  f"   CPU min {low * 1e3:7.1f} ms")
        if "against" in medians:
            (w1, c1, m1), (w0, c0, m0) = medians["this tree"], medians["against"]
            print(f"shapecalc {name:<13} ratio      wall {w1 / w0:7.3f}      CPU {c1 / c0:7.3f}"
                  f"      CPU min {m1 / m0:7.3f}")


if __name__ == "__main__":
    main()
