"""``check`` against ``show`` on a large misfit: ReLU × 199,998 then ``Linear(5, 2)``, input 1×4.

Issue 21 asks ``check`` to answer within the same budget as ``show``. ``check`` analyses the
model once (the verdict), then verifies its fix; the verification now analyses only from the
node the fix changed (the nodes before the failing one were checked by the verdict), and the
batch-keeping check at the next batch size reads shapes alone. Each command runs in a fresh
process; CPU time is reported next to wall time, as the machine is shared.

Run: ``python benchmarks/bench_check_misfit.py [TREE ...]`` — each TREE (a checkout, default
this one) is put first on ``PYTHONPATH`` so that an older tree can be timed side by side.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(tree: str, args: list[str], cwd: str) -> tuple[float, float, int]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shapecalc", *args], env=env, cwd=cwd,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.returncode


def main() -> None:
    trees = sys.argv[1:] or [str(Path(__file__).resolve().parent.parent)]
    layers = [{"type": "ReLU"}] * 199_998 + [{"type": "Linear", "in_features": 5, "out_features": 2}]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "misfit.json").write_text(json.dumps({"input": [1, 4], "layers": layers}))
        for tree in trees:
            cpu = {}
            for command in ("show", "check"):
                wall, cpu[command], code = run(tree, [command, "misfit.json"], tmp)
                print(f"{tree}: {command:5s} {wall:6.2f} s wall {cpu[command]:6.2f} s cpu  exit {code}")
            print(f"{tree}: check / show = {cpu['check'] / cpu['show']:.2f} (cpu)")


if __name__ == "__main__":
    main()
