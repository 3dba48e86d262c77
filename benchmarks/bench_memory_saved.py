"""Saved activations of a training step: shapecalc's account beside torchinfo's, against autograd.

For each model, in one process (so machine load hits all alike):

- truth: what one real CPU forward in train mode saves for backward, counted through
  ``saved_tensors_hooks`` with each storage once and parameters left out
  (``shapecalc.torch_bridge.saved.autograd_saved``);
- shapecalc: ``analysis.memory(device="laptop-cpu").saved_activations`` and the time the
  estimate takes, which includes one meta forward with autograd saving (the recorded run that
  gives a hooks-read transformer and a traced model their storages); beside it the same
  estimate from the per-layer rules alone (no recorded run), as before that run existed;
- torchinfo: ``summary(...).total_output_bytes`` × 2, its "forward/backward pass size", and the
  time ``summary`` takes (its forward is real: it computes).

Run: ``PYTHONPATH=tests/cpu_torchvision:. python benchmarks/bench_memory_saved.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _models():
    import torchvision
    from corpus import modern

    import shapecalc

    tv = torchvision.models
    yield "swin-style (fx)", modern.SwinTiny(), [(2, 3, 32, 32)], None
    yield "resnet50 (fx)", tv.resnet50(), [(8, 3, 224, 224)], None
    yield "swin_t (fx)", tv.swin_t(), [(2, 3, 224, 224)], None
    for folder in ("bert-tiny", "gpt2-tiny", "llama-tiny", "t5-tiny"):
        src = shapecalc.load_model(f"hf:{REPO / 'tests' / 'data' / 'hf' / folder}", seq_len=128)
        shapes = [(8, 128)] * len(src.default_shapes())
        yield f"{folder} (hooks)", src, shapes, src.torch_import.module


def main() -> None:
    import torch
    import torchinfo

    import shapecalc
    from shapecalc.torch_bridge.saved import autograd_saved

    print(f"{'model':<20} {'autograd':>12} {'shapecalc':>12} {'ratio':>6} {'time':>8} "
          f"{'rules only':>12} {'time':>8} {'torchinfo':>12} {'ratio':>6} {'time':>8}")
    for name, model, shapes, module in _models():
        module = module if module is not None else model
        analysis = shapecalc.analyze(model, shapes, mode="train")
        start = time.perf_counter()
        ours = analysis.memory(device="laptop-cpu").saved_activations
        ours_s = time.perf_counter() - start
        analysis.saved_run = None
        start = time.perf_counter()
        rules = analysis.memory(device="laptop-cpu").saved_activations
        rules_s = time.perf_counter() - start
        torch.manual_seed(0)
        xs = [torch.randint(0, 100, s) if module is not model else torch.randn(s) for s in shapes]
        module.train()
        _, truth, _ = autograd_saved(module, xs)
        start = time.perf_counter()
        info = torchinfo.summary(module, input_data=xs, verbose=0, mode="train")
        info_s = time.perf_counter() - start
        peer = 2 * info.total_output_bytes

        def shown(v):
            return f"{v / 2**20:10.2f}Mi" if v is not None else f"{'?':>12}"

        print(f"{name:<20} {shown(truth)} {shown(ours)} {ours / truth if ours else 0:6.3f} "
              f"{ours_s:7.2f}s {shown(rules)} {rules_s:7.2f}s {shown(peer)} {peer / truth:6.3f} "
              f"{info_s:7.2f}s")


if __name__ == "__main__":
    main()
