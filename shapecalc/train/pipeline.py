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
    """(inputs, labels) for batches ``start, start+1, ...`` of ``order``, full batches only.

    The partial last batch (60000 mod 128 = 96 images) is dropped, as ``drop_last`` does: a
    second batch shape would cost cuDNN a second autotuning and a second kernel set, and which
    images are left out changes every epoch with the shuffle. A split smaller than one batch
    is used whole.
    """
    order = order.to(data.labels.device, non_blocking=True)
    for b in range(start, num_batches(len(order), batch)):
        idx = order[b * batch:(b + 1) * batch]
        yield to_inputs(data.images[idx], size, channels_last), data.labels[idx]


def eval_batches(data: DeviceSplit, batch: int, size: int, channels_last: bool = False,
                 rank: int = 0, world: int = 1, pad: bool = False
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """(inputs, labels, n) for the split in order (this rank's contiguous shard).

    With ``pad`` the last batch is filled up to ``batch`` by repeating the shard's last image,
    so every batch has one shape (one cuDNN autotuning); only the first ``n`` rows are real.
    """
    n = len(data)
    lo, hi = n * rank // world, n * (rank + 1) // world
    for i in range(lo, hi, batch):
        j = min(i + batch, hi)
        if pad and j - i < batch and hi - lo >= batch:
            idx = torch.arange(i, i + batch, device=data.labels.device).clamp_(max=hi - 1)
            yield to_inputs(data.images[idx], size, channels_last), data.labels[idx], j - i
        else:
            yield to_inputs(data.images[i:j], size, channels_last), data.labels[i:j], j - i


def num_batches(n: int, batch: int) -> int:
    """Full batches in ``n`` images (the partial one is dropped), or 1 when ``n`` < ``batch``."""
    return max(n // batch, 1 if n else 0)


def images_trained(n: int, batch: int) -> int:
    """Images one epoch trains on: full batches only (all of them when fewer than one batch)."""
    return n if n < batch else n - n % batch
