"""``shapecalc memory`` against a real GPU: the peak of one AMP training step and per-layer times.

For each model it prints two kinds of ratio, measured / predicted:

* ``torch.cuda.max_memory_allocated()`` over one bfloat16-autocast training step (Adam, after a
  warm-up step so the optimizer state exists, ``zero_grad(set_to_none=True)`` first) against
  ``peak_train`` with ``amp=True``;
* every leaf module's forward time from ``torch.profiler`` (CUDA kernel time of the ops run
  under that module's ``record_function``) against the roofline's prediction on ``--device``,
  and the total forward time likewise. The roofline is a lower bound, so ratios above 1 are
  expected; what matters is which layers sit far above it.

Usage (on a machine with a GPU)::

    python benchmarks/memory_gpu.py --device h100            # alexnet, resnet50, vit_b_16
    python benchmarks/memory_gpu.py --device a100 --batch 64 --models resnet50

Without CUDA it refuses in one line (exit 2), unless ``--cpu`` asks to run the same code paths
on the CPU (CPU autocast, profiler CPU times, the peak from the profiler's allocation events)
to check the script itself; CPU figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time

MODELS = {
    "alexnet": ("alexnet", (3, 224, 224)),
    "resnet50": ("resnet50", (3, 224, 224)),
    "vit_b_16": ("vit_b_16", (3, 224, 224)),
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None,
                        help="roofline device (shapecalc.core.roofline.DEVICES; default h100, "
                             "laptop-cpu with --cpu)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--cpu", action="store_true", help="run on the CPU to test the script")
    return parser.parse_args(argv)


def build(name: str):
    import torchvision

    return getattr(torchvision.models, MODELS[name][0])()


def leaf_modules(model):
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def step(model, x, opt, device_type: str):
    import torch

    with torch.autocast(device_type, dtype=torch.bfloat16):
        loss = model(x).float().sum()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def measured_peak(model, x, opt, device_type: str) -> int:
    """Bytes at the peak of one steady-state AMP step."""
    import torch

    step(model, x, opt, device_type)  # warm-up: optimizer state, autocast caches, cuDNN plans
    if device_type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step(model, x, opt, device_type)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    from torch.profiler import ProfilerActivity, profile

    held = sum(t.untyped_storage().nbytes() for t in list(model.parameters()) + [x]
               + [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)])
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(model, x, opt, device_type)
    changes, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == torch._C._profiler._EventType.Allocation:
            changes.append((event.start_time_ns, event.extra_fields.alloc_size))
        stack.extend(event.children)
    now = peak = 0
    for _, change in sorted(changes):
        now += change
        peak = max(peak, now)
    return held + peak


def layer_times(model, x, device_type: str) -> dict[str, float]:
    """Seconds of each leaf module's forward, from the profiler (device time on a GPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    scopes: list = []
    hooks = []
    for name, module in leaf_modules(model):
        def enter(m, a, name=name):
            scope = record_function(f"layer::{name}")
            scope.__enter__()
            scopes.append(scope)

        def leave(m, a, o):
            scopes.pop().__exit__(None, None, None)

        hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device_type == "cuda" else [])
    try:
        with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16):
            model(x)  # warm-up
            if device_type == "cuda":
                torch.cuda.synchronize()
            with profile(activities=activities) as prof:
                model(x)
                if device_type == "cuda":
                    torch.cuda.synchronize()
    finally:
        for h in hooks:
            h.remove()
    times = {}
    for event in prof.key_averages():
        if event.key.startswith("layer::"):
            device_us = getattr(event, "device_time_total", 0) if device_type == "cuda" else 0
            times[event.key[len("layer::"):]] = (device_us or event.cpu_time_total) / 1e6
    return times


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    import shapecalc
    from shapecalc.output.memory import view

    if not args.cpu and not torch.cuda.is_available():
        print("memory_gpu.py: error: no CUDA device here; run it on a GPU machine, or pass --cpu "
              "to test the script on the CPU", file=sys.stderr)
        return 2
    device_type = "cpu" if args.cpu else "cuda"
    args.device = args.device or ("laptop-cpu" if args.cpu else "h100")
    where = torch.cuda.get_device_name() if device_type == "cuda" else "CPU (script check only)"
    print(f"{time.strftime('%Y-%m-%d')}  {where}  roofline device {args.device}  batch {args.batch}"
          f"  torch {torch.__version__}")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build(name).train()
        shape = (args.batch,) + MODELS[name][1]
        result = view(shapecalc.analyze(model, shape, mode="train"), optimizer="adam", amp=True,
                      device=args.device)
        model = model.to(device_type)
        x = torch.randn(shape, device=device_type)
        opt = torch.optim.Adam(model.parameters())
        peak = measured_peak(model, x, opt, device_type)
        print(f"\n{name}: peak of one AMP step measured {peak / 2**20:,.0f} MiB, predicted "
              f"{result.memory.peak_train / 2**20:,.0f} MiB, ratio {peak / result.memory.peak_train:.3f}")
        times = layer_times(model.eval(), x, device_type)
        predicted = {r.name: r.seconds for r in result.roofline.layers}
        modules = {node.name: node.module for node in result.analysis.graph.nodes}
        rows = [(n, t, predicted.get(next((k for k, m in modules.items() if m == n), n)))
                for n, t in times.items()]
        rows = [(n, t, p) for n, t, p in rows if p]
        for n, t, p in sorted(rows, key=lambda r: -r[1])[:10]:
            print(f"  {n:40s} measured {t * 1e6:10.1f} µs  roofline {p * 1e6:10.1f} µs  ratio {t / p:8.2f}")
        total = sum(t for _, t, _ in rows)
        print(f"  forward, {len(rows)} layers: measured {total * 1e3:.3f} ms, roofline "
              f"{result.roofline.forward_seconds * 1e3:.3f} ms, ratio "
              f"{total / result.roofline.forward_seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
