"""Everything a training run does before epoch 1: CPU threads, device, output folder, data,
the model (built, shape-checked against the engine, wrapped for DDP or compiled), the optimiser,
the state a ``--resume`` restores, and cuDNN's warm-up; then the run's opening lines.

:class:`RunSetup` is the part of :class:`~shapecalc.train.loop.Trainer` that prepares; the
trainer itself runs the epochs, evaluates and saves. It reads the attributes the trainer's
``__init__`` sets (``config``, ``world``, ``reporter``, ``resume``, ``source``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from shapecalc.train import checkpoint as ckpt
from shapecalc.train import distributed
from shapecalc.train.config import DevicePolicy, resolve_device
from shapecalc.train.locate import load_for
from shapecalc.train.errors import TrainError
from shapecalc.train.metrics import EpochMetrics
from shapecalc.train.model import build, check_image_size, check_shapes, default_image_size, resolve, warm_up
from shapecalc.train.pipeline import DeviceSplit, eval_batches, images_trained, num_batches


class RunSetup:
    """Preparing a run (mixed into :class:`~shapecalc.train.loop.Trainer`)."""

    def setup(self) -> None:
        cfg, world = self.config, self.world
        if cfg.threads is None:
            cfg.threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        src = self.source if self.source is not None else resolve(cfg.model)
        self.source = src
        if cfg.image_size is None:
            cfg.image_size = default_image_size(src)
        check_image_size(src, cfg.image_size)  # once, before any data or device work
        if cfg.batch_size % world.size:
            raise TrainError(f"--batch-size {cfg.batch_size} must divide evenly over {world.size} ranks")
        self.device = resolve_device(cfg.device, world.local_rank if world.distributed else None)
        self.policy = DevicePolicy.of(self.device, cfg)
        self.amp, self.channels_last = self.policy.amp, self.policy.channels_last
        self.out = Path(cfg.out) if cfg.out else None
        if self.out is not None and world.is_main:
            if self.resume is None:
                ckpt.prepare_out(self.out, cfg.force)
            else:
                ckpt.check_writable(self.out)
        distributed.init(world, self.device)
        self.policy.tune()

        data, data_source = load_for(cfg)
        self.train_data = DeviceSplit.from_split(data.train, self.device, cfg.limit_train)
        self.test_data = DeviceSplit.from_split(data.test, self.device, cfg.limit_test)
        self.module = build(src, cfg.image_size, cfg.seed).to(self.device)
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        layers = check_shapes(src, self.module, cfg.image_size, self.device)
        self.model = distributed.wrap(self.module, world, self.device)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=cfg.lr)
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.history: list[EpochMetrics] = []
        self.start_epoch, self.start_batch, self.partial = 0, 0, None
        local = cfg.batch_size // world.size
        self.batches = num_batches(len(self.train_data) // world.size, local)
        if self.resume is not None:
            self._restore(self.resume)
        if self.policy.warms_up and not world.distributed:  # (under DDP a bare backward would upset its reducer)
            self.warm_up()
        r = self.reporter
        r.info(f"shapecalc train: {src.name} at {cfg.image_size}x{cfg.image_size} on {self.device}"
               f"{f' x{world.size} ranks' if world.distributed else ''} "
               f"(amp {'bf16' if self.amp else 'off'}, channels-last {'on' if self.channels_last else 'off'}"
               f"{', compiled' if cfg.compile else ''}"
               f"{f', {cfg.threads} CPU threads' if self.device.type == 'cpu' else ''})")
        used = images_trained(len(self.train_data) // world.size, local) * world.size
        dropped = f" ({len(self.train_data) - used} left out of each epoch: full batches only)" \
            if used != len(self.train_data) else ""
        r.info(f"data: {data_source}; train {len(self.train_data)}, test {len(self.test_data)} "
               f"images{dropped}")
        r.info(f"shape check: {layers} layers on {self.device} match the engine's table")
        if self.resume is not None:
            r.info(f"resumed at epoch {self.start_epoch + 1}, batch {self.start_batch}")

    def _restore(self, state: dict[str, Any]) -> None:
        where = f"--resume {self.out / ckpt.CHECKPOINT if self.out else 'checkpoint'}"
        ckpt.load_weights(self.module, state["weights"], where)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.data_rng.set_state(state["data_rng"])
            ckpt.restore_rng(state["rng"], self.device)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TrainError(f"{where}: the optimiser or RNG state does not load: {first}") from None
        self.history = [EpochMetrics(**m) for m in state["history"]]
        self.start_epoch, self.start_batch = state["epoch"], state["batch"]
        if self.start_batch >= self.batches and self.start_batch:
            raise TrainError(f"{where}: entry 'batch' is {self.start_batch}, but an epoch has "
                             f"{self.batches} batches")
        self.partial = state.get("partial")

    def warm_up(self) -> None:
        """cuDNN's autotuning for both batch shapes before epoch 1's clock starts (see model.warm_up)."""
        cfg, dev = self.config, self.device
        local = min(cfg.batch_size // self.world.size, len(self.train_data))
        x = torch.zeros(local, 1, cfg.image_size, cfg.image_size, device=dev)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        test_x = next(eval_batches(self.test_data, self.eval_batch, cfg.image_size,
                                   self.channels_last, pad=self.pad_eval))[0]
        warm_up(self.module, self.optimizer, x, test_x, self.amp)

    @property
    def eval_batch(self) -> int:
        return self.policy.eval_batch(self.config.batch_size)

    @property
    def pad_eval(self) -> bool:
        return self.policy.pad_eval


__all__ = ["RunSetup"]
