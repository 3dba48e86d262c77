"""Reading large YAML specs: time and peak memory of ``load_spec``, each case in a fresh process.

A 31 MB YAML spec under the 32 MiB file cap took ~46 s under load (issue 21) only to reach the
event budget, because YAML is read one event at a time at Python speed. The YAML cap is now
derived from the node budget (``spec_decode.yaml_char_limit``: 64 characters a node, 12.8 MB
at the default 200,000), so that file is refused before parsing; the largest YAML still read is
timed next to the same spec as JSON (read at C speed).

Run: ``python benchmarks/bench_yaml_spec.py [TREE ...]`` — each TREE (a checkout of shapecalc,
default this one) is put first on ``PYTHONPATH``, so an older tree can be timed side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = "input: [1, 3, 8, 8]\nlayers:\n"
RELU = "  - {type: ReLU}\n"

CHILD = r"""
import resource, sys, time
from shapecalc.core.errors import SpecError
from shapecalc.models.specfile import load_spec
start, cpu = time.perf_counter(), time.process_time()
try:
    doc = load_spec(sys.argv[1])
    outcome = f"read, {sum(1 for _ in doc.block.children()):,} layers"
except SpecError as err:
    outcome = "refused: " + str(err)[:90]
took, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{took:6.2f} s wall {cpu:6.2f} s cpu {peak:6.0f} MiB   {outcome}")
"""


def cases(folder: Path) -> dict[str, Path]:
    from shapecalc.models.spec_decode import yaml_char_limit
    from shapecalc.core.blocks import DEFAULT_MAX_NODES

    limit = yaml_char_limit(DEFAULT_MAX_NODES)
    fits = (limit - len(HEADER)) // len(RELU)
    files = {
        "31 MB YAML, ReLU x 1.9M (issue 21)": ("big.yaml", HEADER + RELU * 1_900_000),
        f"YAML at the cap, ReLU x {fits:,}": ("cap.yaml", HEADER + RELU * fits),
        f"same spec as JSON, ReLU x {fits:,}": ("cap.json", json.dumps(
            {"input": [1, 3, 8, 8], "layers": [{"type": "ReLU"}] * fits})),
        "YAML at the cap, layers of 60 keys each": ("keys.yaml", HEADER + ("  - {" + ", ".join(
            f"k{i}: [1, 2]" for i in range(60)) + "}\n") * ((limit - 60) // 1000)),
        "YAML at the cap, one flow list of ints": ("ints.yaml", HEADER + "  - {type: ReLU, name: ["
                                                    + "1," * ((limit - 60) // 2) + "1]}\n"),
    }
    out = {}
    for label, (name, text) in files.items():
        path = folder / name
        path.write_text(text)
        out[label] = path
    return out


def main() -> None:
    trees = sys.argv[1:] or [str(Path(__file__).resolve().parent.parent)]
    with tempfile.TemporaryDirectory() as tmp:
        files = cases(Path(tmp))
        for tree in trees:
            print(f"== {tree}")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]))
            for label, path in files.items():
                run = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env,
                                     capture_output=True, text=True, cwd=tmp)
                print(f"{label:44s} {(run.stdout or run.stderr).strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
