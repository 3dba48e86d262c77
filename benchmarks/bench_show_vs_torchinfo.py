"""``shapecalc show alexnet`` against torchinfo's summary of the same AlexNet, whole process.

Both run as fresh processes, side by side in one run (interleaved, so machine load hits both
alike), ``--runs`` times each; the medians of wall time and peak resident memory are printed
with their ratio. Peak memory is each child's own ``ru_maxrss`` (``os.wait4``), not the
harness's. Both get a warm bytecode cache first, as an installed package has.

Run: ``python benchmarks/bench_show_vs_torchinfo.py [--runs 7]``
Targets (issue 2): shapecalc ≥ 10× faster than the torchinfo process and < 60 MiB peak.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: d2l §8.1's AlexNet written in torch, then torchinfo's summary: what a user runs today.
TORCHINFO = """
import torch
from torch import nn
from torchinfo import summary
net = nn.Sequential(
    nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
    nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
    nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
    nn.Linear(4096, 10))
print(summary(net, input_size=(1, 1, 224, 224), verbose=0))
"""


def shapecalc_command() -> list[str]:
    here = Path(sys.executable).parent / "shapecalc"
    script = str(here) if here.exists() else shutil.which("shapecalc")
    return [script, "show", "alexnet"] if script else [sys.executable, "-m", "shapecalc", "show", "alexnet"]


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one run of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {proc.stderr.read().decode()[-500:]}")
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = usage.ru_maxrss / (1 << 20) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return wall, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="shapecalc-bench-pyc-")
    commands = {"shapecalc show alexnet": shapecalc_command(),
                "torch + torchinfo.summary": [sys.executable, "-c", TORCHINFO]}
    for cmd in commands.values():  # warm the bytecode and file caches, untimed
        measure(cmd, env)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            results[name].append(measure(cmd, env))
    print(f"{args.runs} runs each, medians (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'':28}{'wall':>10}{'peak RSS':>12}")
    medians = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        medians[name] = (wall, rss)
        print(f"{name:28}{wall * 1000:>8.0f} ms{rss:>8.1f} MiB")
    (sw, sr), (tw, tr) = medians.values()
    print(f"{'ratio (torchinfo / shapecalc)':28}{tw / sw:>9.1f}×{tr / sr:>10.1f}×")
    print(f"targets: ≥ 10× faster: {'met' if tw / sw >= 10 else 'NOT met'}; "
          f"< 60 MiB: {'met' if sr < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
