"""Big transformer configurations on the meta device: shapecalc beside calflops and accelerate.

For each configuration (tests/data/hf: the Llama-3-70B and Llama-3.1-405B shapes), every tool
runs in a fresh process, interleaved run by run so machine load hits all alike; each child
reports the time its imports took, the time its analysis took after them, the parameters it
counted and its own peak resident memory (``VmHWM`` from ``/proc/self/status``: not
``ru_maxrss``, which Linux carries from the parent across fork and exec, so a child started
by a large process would report the parent's peak):

- shapecalc: ``shapecalc.analyze("hf:CONFIG")`` (builds on the meta device by itself);
- calflops: ``calculate_flops`` on the model built from the same config under accelerate's
  ``init_empty_weights`` (what its hub path does), fed meta token ids;
- accelerate: ``calculate_maximum_sizes`` on that empty model, the sizes behind
  ``accelerate estimate-memory`` (the command itself takes hub names only, and this machine
  has no hub). It counts bytes at the weights' type (bfloat16 here): params = bytes / 2.

Every child imports torch, transformers and the Llama classes before its clock starts
(transformers loads a model family's modules lazily, on first use: seconds of imports that
are nobody's analysis).

Run: ``python benchmarks/bench_hf_meta.py [--runs 3] [--configs llama-3.1-405b llama-3-70b]``
Target (issue 20): shapecalc's analysis ≤ 2 s after imports and the whole process ≤ 500 MiB
on the 405B shape, with exact parameters (405,853,388,800; 70B: 70,553,706,496).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "hf"

#: Every child's own peak resident memory, in MiB (Linux).
PEAK = "int(re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read()).group(1)) / 1024"

#: Each child prints one JSON line: imports_s, analysis_s (wall clock), cpu_s (the process's own
#: CPU time for the analysis: what the wall clock reads on a quiet machine, as this 2-core
#: machine is shared), params, macs (or None), rss_mib.
SHAPECALC = """
import json, re, sys, time
t0 = time.perf_counter()
import torch, transformers, shapecalc
from shapecalc.models.api import analyze
from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM  # the same imports for all
t1, c1 = time.perf_counter(), time.process_time()
result = analyze("hf:" + sys.argv[1])
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"imports_s": t1 - t0, "analysis_s": t2 - t1, "cpu_s": c2 - c1, "params": result.total_params,
                  "macs": result.total_macs, "rss_mib": PEAK}))
""".replace("PEAK", PEAK)

EMPTY_MODEL = """
import json, re, sys, time
t0 = time.perf_counter()
import torch, transformers
from accelerate import init_empty_weights
from transformers import AutoConfig, LlamaConfig, LlamaForCausalLM  # the same imports for all
{imports}
t1, c1 = time.perf_counter(), time.process_time()
doc = json.load(open(sys.argv[1] + "/config.json"))
config = transformers.AutoConfig.for_model(**{{k: v for k, v in doc.items() if k != "architectures"}})
config.use_cache = False
with init_empty_weights():
    model = getattr(transformers, doc["architectures"][0])._from_config(config, attn_implementation="eager")
{measure}
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"imports_s": t1 - t0, "analysis_s": t2 - t1, "cpu_s": c2 - c1, "params": params, "macs": macs,
                  "rss_mib": PEAK}}))
""".replace("PEAK", PEAK)

CALFLOPS = EMPTY_MODEL.format(imports="from calflops import calculate_flops", measure="""
ids = torch.zeros(1, 128, dtype=torch.long, device="meta")
mask = torch.ones(1, 1, 1, 128, dtype=torch.bool, device="meta")  # 2-D masks are read on meta
flops, macs, params = calculate_flops(model, kwargs={"input_ids": ids, "attention_mask": mask},
                                      print_results=False, print_detailed=False,
                                      output_as_string=False)
""")

ACCELERATE = EMPTY_MODEL.format(imports="from accelerate.utils import calculate_maximum_sizes", measure="""
total_bytes, _largest = calculate_maximum_sizes(model)
# accelerate reports bytes at the weights' own type (the config's bfloat16): parameters = bytes / size
params, macs = total_bytes // next(model.parameters()).element_size(), None
""")

TOOLS = {"shapecalc": SHAPECALC, "calflops": CALFLOPS, "accelerate": ACCELERATE}


def run_child(code: str, config: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO / "tests" / "cpu_torchvision"), str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True,
                          env=env, timeout=900)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=["llama-3.1-405b", "llama-3-70b"])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    args = parser.parse_args()
    print(f"{'config':16} {'tool':11} {'imports s':>10} {'analysis s':>11} {'cpu s':>6} {'peak MiB':>9} "
          f"{'params':>19} {'MACs':>24}")
    for name in args.configs:
        config = DATA / name
        results: dict[str, list[dict]] = {tool: [] for tool in args.tools}
        for _ in range(args.runs):
            for tool in args.tools:
                results[tool].append(run_child(TOOLS[tool], config))
        for tool, runs in results.items():
            good = [r for r in runs if "error" not in r]
            if not good:
                print(f"{name:16} {tool:11} fails: {runs[0]['error']}")
                continue
            med = {k: statistics.median(r[k] for r in good)
                   for k in ("imports_s", "analysis_s", "cpu_s", "rss_mib")}
            macs = good[0]["macs"]
            print(f"{name:16} {tool:11} {med['imports_s']:10.2f} {med['analysis_s']:11.2f} {med['cpu_s']:6.2f} "
                  f"{med['rss_mib']:9.0f} {good[0]['params']:19,} "
                  f"{'-' if macs is None else format(int(macs), ','):>24}")


if __name__ == "__main__":
    main()
