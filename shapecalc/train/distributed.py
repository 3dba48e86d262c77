"""DistributedDataParallel when launched by ``torchrun`` (RANK/WORLD_SIZE/LOCAL_RANK set).

The same command runs single-process or under ``torchrun --nproc_per_node=N -m shapecalc
train``: each rank owns one device and its shard of the identically permuted data, gradients
are averaged by DDP, metrics are summed across ranks and only rank 0 prints or writes.
NCCL on CUDA, gloo on the CPU (which is how the tests exercise it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from shapecalc.train.config import is_cuda


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_env() -> World:
    """The launch as torchrun describes it; a plain launch is a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def init(world: World, device: torch.device) -> None:
    if not world.distributed or dist.is_initialized():
        return
    backend = "nccl" if is_cuda(device) else "gloo"
    if is_cuda(device):
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=world.rank, world_size=world.size)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if is_cuda(device) else None
    return DistributedDataParallel(model, device_ids=ids)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
