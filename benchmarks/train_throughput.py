"""Images/s of ``shapecalc train``'s pipeline against a plain d2l-style loop, side by side.

Same model (the engine's AlexNet spec, Xavier init), same device, same batch, same SGD step.
Only the way batches are made and run differs:

* **pipeline** — the whole uint8 dataset on the device; each batch is a gather, a bilinear
  resize and a scale on the device; bf16 autocast and channels-last on CUDA (fp32 on the CPU,
  as ``shapecalc train`` does); loss and accuracy summed on the device, no per-step sync.
* **d2l loop** — what d2l's ``train_ch6`` does: a ``DataLoader`` (4 workers, as d2l's
  ``get_dataloader_workers``) over a Dataset that resizes each sample on the CPU, fp32,
  a host→device copy per batch and a ``float(...)`` read of loss and accuracy per step.

The baseline runs first, with torch's default backend flags, so the pipeline's settings
(TF32, cudnn.benchmark) cannot leak into it.

    python benchmarks/train_throughput.py --device cuda --steps 100 --data-dir .data/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from shapecalc.train.config import resolve_device  # noqa: E402
from shapecalc.train.model import build, check_image_size  # noqa: E402
from shapecalc.train.pipeline import DeviceSplit, epoch_order, train_batches  # noqa: E402


class ResizingDataset(torch.utils.data.Dataset):
    """d2l's ToTensor + Resize, one sample at a time on the CPU."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int) -> None:
        self.images, self.labels, self.size = images, labels, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float().div(255.0)[None, None]
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x[0], int(self.labels[i])


def _time(step, batches, steps: int, warmup: int, device: torch.device) -> float:
    """Images/s over ``steps`` steps after ``warmup`` untimed ones (worker start, cudnn autotune)."""
    it = iter(batches)
    seen = 0
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began, seen = time.perf_counter(), 0
        x, y = next(it)
        step(x, y)
        seen += y.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - began)


def baseline(data, device, size: int, batch: int, steps: int, warmup: int, workers: int) -> float:
    model = build("alexnet", size, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = torch.utils.data.DataLoader(
        ResizingDataset(data.images, data.labels, size), batch_size=batch, shuffle=True,
        num_workers=workers, drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    totals = [0.0, 0.0, 0]

    def step(x, y):
        x, y = x.to(device), y.to(device)
        y_hat = model(x)
        loss = F.cross_entropy(y_hat, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():  # d2l's metric.add(l * n, accuracy(y_hat, y), n): syncs every step
            totals[0] += float(loss) * y.shape[0]
            totals[1] += float((y_hat.argmax(1) == y).sum())
            totals[2] += y.shape[0]

    return _time(step, _cycle(loader), steps, warmup, device)


def pipeline(data, device, size: int, batch: int, steps: int, warmup: int) -> float:
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    model = build("alexnet", size, seed=0).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    split = DeviceSplit(data.images.to(device), data.labels.to(device).long())
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)

    def batches():
        g = torch.Generator().manual_seed(0)
        while True:
            yield from train_batches(split, epoch_order(len(split), g), batch, size, cuda)

    def step(x, y):
        nonlocal loss_sum, correct
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach().double() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()

    return _time(step, batches(), steps, warmup, device)


def _cycle(loader):
    while True:
        yield from loader


def load(args):
    from shapecalc.train.data import load_fashion_mnist, synthetic
    from shapecalc.train.locate import locate

    if args.synthetic:
        return synthetic(max(args.batch_size * (args.steps + args.warmup), 1024), 16).train
    return load_fashion_mnist(locate(args.data_dir)).train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=50, help="timed steps per loop")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=4, help="baseline DataLoader workers (d2l: 4)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    for name in ("steps", "image_size", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be ≥ 1")
    if args.warmup < 0 or args.workers < 0:
        p.error("--warmup and --workers must be ≥ 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    check_image_size("alexnet", args.image_size)
    device = resolve_device(args.device)
    data = load(args)
    common = (data, device, args.image_size, args.batch_size, args.steps, args.warmup)
    base = baseline(*common, args.workers)
    ours = pipeline(*common)
    result = {
        "device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "image_size": args.image_size, "batch_size": args.batch_size,
        "steps": args.steps, "workers": args.workers, "synthetic": args.synthetic,
        "pipeline_images_per_s": ours, "baseline_images_per_s": base, "ratio": ours / base,
    }
    amp = "bf16 autocast, channels-last" if device.type == "cuda" else "fp32"
    print(f"device {device}{' (' + result['gpu'] + ')' if result['gpu'] else ''}, torch {torch.__version__}, "
          f"AlexNet {args.image_size}x{args.image_size}, batch {args.batch_size}, {args.steps} timed steps")
    print(f"d2l loop : {base:>10,.0f} images/s  (DataLoader, {args.workers} workers, per-sample CPU resize, fp32)")
    print(f"pipeline : {ours:>10,.0f} images/s  (data on the device, {amp})")
    print(f"speed-up : {ours / base:>10.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
