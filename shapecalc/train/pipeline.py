"""Batches made on the device: the whole uint8 dataset lives there, batches are index gathers.

Fashion-MNIST is 47 MB as uint8 (60k × 28 × 28), so it fits on any accelerator. A batch is
then one gather, one cast, one bilinear resize and one fused scale-and-shift, all on the
device: no per-sample Python, no DataLoader workers, no host→device copy per step. The
shuffle is a ``torch.randperm`` drawn from a CPU generator, so the order depends only on the
seed (not on the device) and the generator's state can be checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

# Fashion-MNIST train-set pixel mean and standard deviation on the 0..1 scale.
MEAN, STD = 0.2860, 0.3530


def to_inputs(images: torch.Tensor, size: int, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, 28, 28) → standardised float32 (N, 1, size, size), resized bilinearly."""
    x = images.unsqueeze(1).float()
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=False)
    x = x.mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@dataclass
class DeviceSplit:
    """One split resident on ``device``: uint8 images and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_split(cls, split, device: torch.device, limit: int | None = None) -> "DeviceSplit":
        images, labels = split.images, split.labels
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return cls(images.to(device, non_blocking=True), labels.to(device).long())

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def epoch_order(n: int, generator: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
    """This rank's share of a seeded permutation of ``range(n)``.

    Every rank draws the same permutation (same seed), trims it to a multiple of ``world`` so
    all ranks take the same number of steps, and takes every ``world``-th index: the union of
    the ranks' i-th batches is then exactly the single-process i-th batch.
    """
    perm = torch.randperm(n, generator=generator)
    if world > 1:
        perm = perm[: n - n % world][rank::world]
    return perm


def train_batches(data: DeviceSplit, order: torch.Tensor, batch: int, size: int,
                  channels_last: bool = False, start: int = 0
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) for batches ``start, start+1, ...`` of ``order``."""
    order = order.to(data.labels.device, non_blocking=True)
    for i in range(start * batch, len(order), batch):
        idx = order[i:i + batch]
        yield to_inputs(data.images[idx], size, channels_last), data.labels[idx]


def eval_batches(data: DeviceSplit, batch: int, size: int, channels_last: bool = False,
                 rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The split in order (this rank's contiguous shard), in batches of ``batch``."""
    n = len(data)
    lo, hi = n * rank // world, n * (rank + 1) // world
    for i in range(lo, hi, batch):
        j = min(i + batch, hi)
        yield to_inputs(data.images[i:j], size, channels_last), data.labels[i:j]


def num_batches(n: int, batch: int) -> int:
    return (n + batch - 1) // batch
