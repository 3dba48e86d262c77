"""Measure the MACs shapecalc, torchinfo and fvcore give for the cases where their rules differ.

Prints the conventions table of docs/macs.md, one row per case, every number measured now:

    python benchmarks/mac_conventions.py            # markdown rows
    python benchmarks/mac_conventions.py --json     # {case: {tool: macs}}

fvcore (``pip install fvcore``) counts FLOPs as multiply-accumulates ("one fused multiply-add
is one flop"); torchinfo reports "mult-adds". A tool that is not installed shows ``n/a``.
``tests/test_mac_conventions.py`` checks that page's shapecalc and torchinfo columns against
the same measurements.
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any, Callable

import torch
from torch import nn


def _cases() -> list[tuple[str, str, Callable[[], nn.Module], tuple[int, ...], torch.dtype]]:
    """(name, what the row shows, module factory, input shape, input dtype)."""
    return [
        ("Linear(768, 3072) on 1×197×768", "Linear on a 3-D input (a ViT-B MLP)",
         lambda: nn.Linear(768, 3072), (1, 197, 768), torch.float32),
        ("Conv2d(3, 64, 7, 2, 3) on 1×3×224×224", "biases (a ResNet stem with a bias)",
         lambda: nn.Conv2d(3, 64, 7, 2, 3), (1, 3, 224, 224), torch.float32),
        ("BatchNorm2d(64) on 1×64×112×112", "norm layers (eval)",
         lambda: nn.BatchNorm2d(64), (1, 64, 112, 112), torch.float32),
        ("LayerNorm(768) on 1×197×768", "norm layers", lambda: nn.LayerNorm(768), (1, 197, 768),
         torch.float32),
        ("MultiheadAttention(768, 12) on 1×197×768", "attention matmuls (ViT-B/16's attention)",
         lambda: nn.MultiheadAttention(768, 12, batch_first=True), (1, 197, 768), torch.float32),
        ("GELU() on 1×197×3072", "element-wise ops", lambda: nn.GELU(), (1, 197, 3072), torch.float32),
        ("LSTM(32, 64, num_layers=2) on 1×20×32", "RNNs",
         lambda: nn.LSTM(32, 64, 2, batch_first=True), (1, 20, 32), torch.float32),
        ("Embedding(1000, 64) on 2×7 ids", "lookup tables", lambda: nn.Embedding(1000, 64), (2, 7),
         torch.long),
    ]


class _FirstOutput(nn.Module):
    """How a network calls the module: self-attention without weights, an RNN's sequence."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if isinstance(self.inner, nn.MultiheadAttention):
            return self.inner(x, x, x, need_weights=False)[0]
        out = self.inner(x)
        return out[0] if isinstance(out, tuple) else out


def shapecalc_macs(module: nn.Module, x: torch.Tensor) -> int:
    """The layer spec's own count (every case is one layer; integer ids need no forward)."""
    from shapecalc.torch_bridge.fx_import import module_to_layer

    layer = module_to_layer(module.inner)
    shape = tuple(x.shape)
    return layer.mac_count(layer.output_shape(shape), shape)


def torchinfo_macs(module: nn.Module, x: torch.Tensor) -> int | None:
    try:
        import torchinfo
    except ImportError:
        return None
    return torchinfo.summary(module, input_data=[x], verbose=0, device="cpu").total_mult_adds


def fvcore_macs(module: nn.Module, x: torch.Tensor) -> int | None:
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(module.eval(), (x,))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


TOOLS: dict[str, Callable[[nn.Module, torch.Tensor], Any]] = {
    "shapecalc": shapecalc_macs, "torchinfo": torchinfo_macs, "fvcore": fvcore_macs,
}


def measure() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    torch.manual_seed(0)
    for name, what, factory, shape, dtype in _cases():
        row: dict[str, Any] = {"what": what}
        x = torch.zeros(shape, dtype=dtype)
        for tool, fn in TOOLS.items():  # each tool called as its documentation shows
            row[tool] = fn(_FirstOutput(factory()).eval(), x)
        results[name] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown rows")
    args = parser.parse_args()
    results = measure()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, row in results.items():
        cells = [f"{row[t]:,}" if isinstance(row[t], int) else "n/a" for t in TOOLS]
        print(f"| {row['what']} | `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
