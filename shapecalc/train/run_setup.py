"""Everything a training run does before epoch 1: CPU threads, device, output folder, data,
the model (built, shape-checked against the engine, wrapped for DDP or compiled), the optimiser,
the state a ``--resume`` restores, and cuDNN's warm-up; then the run's opening lines.

:func:`prepare_run` returns a :class:`PreparedRun`, the value the
:class:`~shapecalc.train.loop.Trainer` is handed: the trainer runs the epochs, evaluates and
saves, and reads what it trains on from that one object rather than from attributes a base
class set on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shapecalc.models.model_source import ModelSource
from shapecalc.train import checkpoint as ckpt
from shapecalc.train import distributed
from shapecalc.train.config import DevicePolicy, TrainConfig, resolve_device
from shapecalc.train.distributed import World
from shapecalc.train.errors import TrainError
from shapecalc.train.locate import load_for
from shapecalc.train.metrics import EpochMetrics
from shapecalc.train.model import build, check_image_size, check_shapes, default_image_size, resolve, warm_up
from shapecalc.train.pipeline import DeviceSplit, eval_batches, images_trained, num_batches
from shapecalc.train.report import Reporter


@dataclass
class PreparedRun:
    """A run ready for epoch 1 (or for the epoch a ``--resume`` continues).

    ``module`` is the bare model (saved, evaluated); ``model`` is what trains (the same module,
    or it wrapped for DDP or compiled). ``history``, ``start_epoch``, ``start_batch`` and
    ``partial`` are where the run stands: empty and zero for a new run, the checkpoint's for a
    resumed one.
    """

    config: TrainConfig
    world: World
    source: ModelSource
    device: torch.device
    policy: DevicePolicy
    out: Path | None
    train_data: DeviceSplit
    test_data: DeviceSplit
    module: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data_rng: torch.Generator
    batches: int
    history: list[EpochMetrics] = field(default_factory=list)
    start_epoch: int = 0
    start_batch: int = 0
    partial: dict[str, Any] | None = None

    @property
    def amp(self) -> bool:
        return self.policy.amp

    @property
    def channels_last(self) -> bool:
        return self.policy.channels_last

    @property
    def eval_batch(self) -> int:
        return self.policy.eval_batch(self.config.batch_size)

    @property
    def pad_eval(self) -> bool:
        return self.policy.pad_eval

    def restore(self, state: dict[str, Any]) -> None:
        """Weights, optimiser, RNGs and the place in the run from a ``--resume`` checkpoint."""
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
        cfg = self.config
        local = min(cfg.batch_size // self.world.size, len(self.train_data))
        x = torch.zeros(local, 1, cfg.image_size, cfg.image_size, device=self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        test_x = next(eval_batches(self.test_data, self.eval_batch, cfg.image_size,
                                   self.channels_last, pad=self.pad_eval))[0]
        warm_up(self.module, self.optimizer, x, test_x, self.amp)


def prepare_run(config: TrainConfig, world: World, reporter: Reporter,
                resume: dict[str, Any] | None = None, source: ModelSource | None = None) -> PreparedRun:
    """Prepare a run and print its opening lines; ``config`` gets its defaults filled in
    (threads, image size), so that the checkpoint stores what the run used."""
    cfg = config
    if cfg.threads is None:
        cfg.threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    src = source if source is not None else resolve(cfg.model)
    if cfg.image_size is None:
        cfg.image_size = default_image_size(src)
    check_image_size(src, cfg.image_size)  # once, before any data or device work
    if cfg.batch_size % world.size:
        raise TrainError(f"--batch-size {cfg.batch_size} must divide evenly over {world.size} ranks")
    device = resolve_device(cfg.device, world.local_rank if world.distributed else None)
    policy = DevicePolicy.of(device, cfg)
    out = Path(cfg.out) if cfg.out else None
    if out is not None and world.is_main:
        if resume is None:
            ckpt.prepare_out(out, cfg.force)
        else:
            ckpt.check_writable(out)
    distributed.init(world, device)
    policy.tune()

    data, data_source = load_for(cfg)
    train_data = DeviceSplit.from_split(data.train, device, cfg.limit_train)
    test_data = DeviceSplit.from_split(data.test, device, cfg.limit_test)
    module = build(src, cfg.image_size, cfg.seed).to(device)
    if policy.channels_last:
        module = module.to(memory_format=torch.channels_last)
    layers = check_shapes(src, module, cfg.image_size, device)
    model = distributed.wrap(module, world, device)
    if cfg.compile:
        model = torch.compile(model)
    local = cfg.batch_size // world.size
    run = PreparedRun(cfg, world, src, device, policy, out, train_data, test_data, module, model,
                      torch.optim.SGD(module.parameters(), lr=cfg.lr),
                      torch.Generator().manual_seed(cfg.seed),
                      num_batches(len(train_data) // world.size, local))
    if resume is not None:
        run.restore(resume)
    if policy.warms_up and not world.distributed:  # (under DDP a bare backward would upset its reducer)
        run.warm_up()
    reporter.info(f"shapecalc train: {src.name} at {cfg.image_size}x{cfg.image_size} on {device}"
                  f"{f' x{world.size} ranks' if world.distributed else ''} "
                  f"(amp {'bf16' if policy.amp else 'off'}, "
                  f"channels-last {'on' if policy.channels_last else 'off'}"
                  f"{', compiled' if cfg.compile else ''}"
                  f"{f', {cfg.threads} CPU threads' if device.type == 'cpu' else ''})")
    used = images_trained(len(train_data) // world.size, local) * world.size
    dropped = f" ({len(train_data) - used} left out of each epoch: full batches only)" \
        if used != len(train_data) else ""
    reporter.info(f"data: {data_source}; train {len(train_data)}, test {len(test_data)} "
                  f"images{dropped}")
    reporter.info(f"shape check: {layers} layers on {device} match the engine's table")
    if resume is not None:
        reporter.info(f"resumed at epoch {run.start_epoch + 1}, batch {run.start_batch}")
    return run


__all__ = ["PreparedRun", "prepare_run"]
