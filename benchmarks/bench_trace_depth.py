"""Tracing a user's ``nn.Module`` as it gets deeper: ``shapecalc.analyze`` beside ``torchinfo.summary``.

The model is N residual blocks ``x + relu(bn(conv(x)))`` (8 channels, 8×8 input), built
as a user writes it (a custom block class, so it goes through torch.fx, not the
``nn.Sequential`` fast path). Both tools analyse the same module in the same process, one
after the other at each depth, runs interleaved (so machine load hits both alike). Printed: the
best of several runs of each, µs per block (flat = linear growth), the ratio shapecalc /
torchinfo of the best runs, and the median of each run's ratio to the torchinfo run beside it
("paired": robust when a shared machine has slow spells).

Run: ``python benchmarks/bench_trace_depth.py [--repeats 7]``
Target (issue 8): ≤ 1× torchinfo's time at 1,000 blocks, and linear growth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

import shapecalc

CHANNELS = 8
INPUT = (1, CHANNELS, 8, 8)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(CHANNELS)

    def forward(self, x):
        return x + torch.relu(self.bn(self.conv(x)))


class Deep(nn.Module):
    def __init__(self, depth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(Block() for _ in range(depth)))
        self.head = nn.Conv2d(CHANNELS, 1, 1)

    def forward(self, x):
        return self.head(self.blocks(x))


def interleaved(ours, theirs, repeats: int) -> tuple[list[float], list[float]]:
    """Wall times of each, runs interleaved (ours, theirs, ours, …) so that a slow spell of a
    shared machine hits both tools, not just whichever ran during it."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((ours, times[0]), (theirs, times[1])):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--depths", default="10,100,1000,2000")
    args = parser.parse_args()
    from torchinfo import summary

    print(f"residual blocks x + relu(bn(conv3x3(x))), input {'×'.join(map(str, INPUT))}, "
          f"torch {torch.__version__}, python {sys.version.split()[0]}, {args.repeats} runs each")
    print(f"{'blocks':>7}{'shapecalc':>12}{'µs/block':>10}{'torchinfo':>12}{'µs/block':>10}"
          f"{'ratio':>8}{'paired':>9}")
    for depth in map(int, args.depths.split(",")):
        model = Deep(depth)
        ours = shapecalc.analyze(model, INPUT)
        theirs = summary(model, input_size=INPUT, verbose=0)
        distinct = sum(p.numel() for p in model.parameters())
        assert ours.total_params == distinct == theirs.total_params, (ours.total_params, distinct)
        assert ours.output_shape == (1, 1, 8, 8)
        mine, other = interleaved(lambda: shapecalc.analyze(model, INPUT),
                                  lambda: summary(model, input_size=INPUT, verbose=0), args.repeats)
        t_ours, t_theirs = min(mine), min(other)
        # best / best, and the median of each run's ratio to the run beside it
        paired = statistics.median(a / b for a, b in zip(mine, other))
        print(f"{depth:>7}{t_ours * 1e3:>9.0f} ms{t_ours / depth * 1e6:>10.0f}"
              f"{t_theirs * 1e3:>9.0f} ms{t_theirs / depth * 1e6:>10.0f}{t_ours / t_theirs:>7.2f}×"
              f"{paired:>8.2f}×")


if __name__ == "__main__":
    main()
