"""The training run: data, model, shape check, epochs, checkpoints, resume, Ctrl-C.

The step loop never reads a value back from the device except every ``sync_every`` steps,
where it checks the recent losses for NaN/inf (naming the step) and refreshes the progress
bar. Ctrl-C only sets a flag; the loop saves a checkpoint at the next step boundary, so the
checkpoint never holds a half-applied optimiser step and ``--resume`` continues bit-for-bit.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig, resolve_device
from .errors import TrainError
from .metrics import EpochMetrics, Totals, environment, summary, write_json
from .model import build, check_image_size, check_shapes, default_image_size
from .pipeline import DeviceSplit, epoch_order, eval_batches, num_batches, train_batches
from .report import Reporter, make_reporter


class Interrupted(Exception):
    """Ctrl-C was honoured at a step boundary; the message says where the checkpoint went."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class RunResult:
    history: list[EpochMetrics]
    summary: dict[str, Any]
    out: Path | None
    device: str
    model: torch.nn.Module = field(repr=False, default=None)


def load_data(config: TrainConfig):
    from .data import load_fashion_mnist, synthetic
    from .locate import locate

    if config.synthetic:
        n_train = min(config.limit_train or 60000, 60000)
        n_test = min(config.limit_test or 10000, 10000)
        return synthetic(n_train, n_test, config.seed), "synthetic (random pixels and labels)"
    directory = locate(config.data_dir)
    return load_fashion_mnist(directory), f"{directory} (official checksums verified)"


class Trainer:
    def __init__(self, config: TrainConfig, reporter: Reporter | None = None,
                 resume: dict[str, Any] | None = None, sync_every: int = 20) -> None:
        self.config = config.validate()
        self.world = distributed.from_env()
        self.reporter = reporter or make_reporter(self.world.is_main)
        self.resume = resume
        self.sync_every = max(1, sync_every)
        self.stop_requested = False

    # -- setup -------------------------------------------------------------------------
    def setup(self) -> None:
        cfg, world = self.config, self.world
        if cfg.image_size is None:
            cfg.image_size = default_image_size(cfg.model)
        check_image_size(cfg.model, cfg.image_size)  # before any data or device work
        if cfg.batch_size % world.size:
            raise TrainError(f"--batch-size {cfg.batch_size} must divide evenly over {world.size} ranks")
        self.device = resolve_device(cfg.device, world.local_rank if world.distributed else None)
        cuda = self.device.type == "cuda"
        self.amp = cuda if cfg.amp is None else cfg.amp
        self.channels_last = cuda if cfg.channels_last is None else cfg.channels_last
        self.out = Path(cfg.out) if cfg.out else None
        if self.out is not None and self.resume is None:
            ckpt.prepare_out(self.out, cfg.force)
        distributed.init(world, self.device)
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        data, source = load_data(cfg)
        self.train_data = DeviceSplit.from_split(data.train, self.device, cfg.limit_train)
        self.test_data = DeviceSplit.from_split(data.test, self.device, cfg.limit_test)
        self.module = build(cfg.model, cfg.image_size, cfg.seed).to(self.device)
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        layers = check_shapes(cfg.model, self.module, cfg.image_size, self.device)
        self.model = distributed.wrap(self.module, world, self.device)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=cfg.lr)
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.history: list[EpochMetrics] = []
        self.start_epoch, self.start_batch, self.partial = 0, 0, None
        if self.resume is not None:
            self._restore(self.resume)
        r = self.reporter
        r.info(f"shapecalc train: {cfg.model} at {cfg.image_size}x{cfg.image_size} on {self.device}"
               f"{f' x{world.size} ranks' if world.distributed else ''} "
               f"(amp {'bf16' if self.amp else 'off'}, channels-last {'on' if self.channels_last else 'off'}"
               f"{', compiled' if cfg.compile else ''})")
        r.info(f"data: {source}; train {len(self.train_data)}, test {len(self.test_data)} images")
        r.info(f"shape check: {layers} layers on {self.device} match the engine's table")
        if self.resume is not None:
            r.info(f"resumed at epoch {self.start_epoch + 1}, batch {self.start_batch}")

    def _restore(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_rng.set_state(state["data_rng"])
        ckpt.restore_rng(state["rng"], self.device)
        self.history = [EpochMetrics(**m) for m in state["history"]]
        self.start_epoch, self.start_batch = state["epoch"], state["batch"]
        self.partial = state.get("partial")

    def _state(self, epoch: int, batch: int, data_rng: torch.Tensor,
               partial: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "config": self.config.to_json(), "epoch": epoch, "batch": batch,
            "data_rng": data_rng, "rng": ckpt.rng_states(self.device),
            "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "history": [m.to_json() for m in self.history], "partial": partial,
        }

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        previous = None
        if self.world.is_main and not self.world.distributed:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self.setup()
            for epoch in range(self.start_epoch, self.config.epochs):
                self._epoch(epoch)
            self._finish()
        except torch.cuda.OutOfMemoryError:
            raise TrainError(f"CUDA out of memory at --batch-size {self.config.batch_size} and "
                             f"--image-size {self.config.image_size}; try a smaller --batch-size") from None
        finally:
            self.reporter.close()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            distributed.shutdown()
        return RunResult(self.history, summary(self.history), self.out, str(self.device), self.module)

    def _on_sigint(self, signum, frame) -> None:
        if self.stop_requested:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.stop_requested = True

    def _epoch(self, epoch: int) -> None:
        cfg, world, dev = self.config, self.world, self.device
        rng_at_start = self.data_rng.get_state()
        order = epoch_order(len(self.train_data), self.data_rng, world.rank, world.size)
        local_batch = cfg.batch_size // world.size
        batches = num_batches(len(order), local_batch)
        start = self.start_batch if epoch == self.start_epoch else 0
        part = self.partial if epoch == self.start_epoch and self.partial else {}
        totals = Totals(dev, part.get("loss_sum", 0.0), part.get("correct", 0), part.get("seen", 0))
        elapsed_before = part.get("seconds", 0.0)
        step_losses = torch.zeros(batches, device=dev)
        self.model.train()
        self.reporter.epoch_start(epoch + 1, cfg.epochs, batches, start)
        autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.amp)
        checked = start
        began = time.perf_counter()
        for i, (x, y) in enumerate(train_batches(self.train_data, order, local_batch, cfg.image_size,
                                                 self.channels_last, start), start=start):
            if self.stop_requested:
                self._interrupt(epoch, i, rng_at_start, totals, elapsed_before + time.perf_counter() - began)
            with autocast:
                logits = self.model(x)
                loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            step_losses[i] = loss.detach()
            totals.add(loss, logits, y)
            if (i + 1) % self.sync_every == 0 or i + 1 == batches:
                self._check_finite(step_losses, checked, i + 1, epoch, batches)
                checked = i + 1
                loss_sum, correct, seen = totals.read()
                rate = (seen - part.get("seen", 0)) * world.size / max(time.perf_counter() - began, 1e-9)
                self.reporter.step(i + 1, loss_sum / max(seen, 1), correct / max(seen, 1), rate)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = elapsed_before + time.perf_counter() - began
        loss_sum, correct, seen = totals.read(distributed.all_reduce_sum)
        eval_began = time.perf_counter()
        test_loss, test_acc = self.evaluate()
        metrics = EpochMetrics(epoch + 1, loss_sum / seen, correct / seen, test_loss, test_acc,
                               seen / max(seconds, 1e-9), seconds, time.perf_counter() - eval_began)
        self.history.append(metrics)
        self.reporter.epoch_end(metrics)
        if self.out is not None and world.is_main:
            ckpt.save(self.out / ckpt.CHECKPOINT,
                      self._state(epoch + 1, 0, self.data_rng.get_state(), None))
            self._write_metrics("running" if epoch + 1 < cfg.epochs else "complete")
        if self.stop_requested:
            self._interrupt(epoch + 1, 0, self.data_rng.get_state(), None, 0.0)

    def _check_finite(self, losses: torch.Tensor, lo: int, hi: int, epoch: int, batches: int) -> None:
        bad = ~torch.isfinite(losses[lo:hi])
        if bool(bad.any()):
            j = lo + int(bad.nonzero()[0])
            value = float(losses[j])
            step = epoch * batches + j + 1
            raise TrainError(
                f"loss became {value} at step {step} (epoch {epoch + 1}, batch {j + 1}); "
                f"--lr {self.config.lr:g} is too high for this run, try a lower one "
                f"(e.g. --lr {self.config.lr / 10:g})"
            )

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        """Test loss and accuracy in large batches, summed over ranks.

        The bare module is evaluated (no DDP wrapper: no gradients to average; no compiled
        graph: eval mode would only trigger a recompile for one pass over 10k images).
        """
        model = self.module.eval()
        dev, world = self.device, self.world
        batch = min(4 * self.config.batch_size, 2048) if dev.type == "cuda" else self.config.batch_size
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        seen = 0
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.amp):
            for x, y in eval_batches(self.test_data, batch, self.config.image_size,
                                     self.channels_last, world.rank, world.size):
                logits = model(x)
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
                seen += y.shape[0]
        packed = torch.stack([loss_sum, correct.double(),
                              torch.tensor(float(seen), dtype=torch.float64, device=dev)])
        loss_total, correct_total, n = distributed.all_reduce_sum(packed).tolist()
        model.train()
        return loss_total / max(n, 1), correct_total / max(n, 1)

    def _interrupt(self, epoch: int, batch: int, data_rng: torch.Tensor, totals: Totals | None,
                   seconds: float) -> None:
        partial = None
        if totals is not None:
            loss_sum, correct, seen = totals.read()
            partial = {"loss_sum": loss_sum, "correct": correct, "seen": seen, "seconds": seconds}
        if self.out is None:
            raise Interrupted(f"interrupted at epoch {epoch + 1}, batch {batch}; "
                              "no --out, so no checkpoint was written")
        path = self.out / ckpt.CHECKPOINT
        ckpt.save(path, self._state(epoch, batch, data_rng, partial))
        self._write_metrics("interrupted")
        raise Interrupted(f"interrupted at epoch {epoch + 1}, batch {batch}; checkpoint written, "
                          f"continue with --resume {path}")

    def _write_metrics(self, status: str) -> None:
        write_json(self.out / ckpt.METRICS, {
            "status": status, "config": self.config.to_json(),
            "environment": environment(self.device, self.world.size),
            "amp": self.amp, "channels_last": self.channels_last,
            "epochs": [m.to_json() for m in self.history], "summary": summary(self.history),
        })

    def _finish(self) -> None:
        if self.world.is_main:
            self.reporter.table(self.history)
        if self.out is None or not self.world.is_main:
            return
        torch.save(self.module.state_dict(), self.out / ckpt.MODEL)
        from .plot import plot_curves

        title = f"{self.config.model} on Fashion-MNIST at {self.config.image_size}x{self.config.image_size}"
        if not plot_curves(self.history, self.out / ckpt.PLOT, title):
            self.reporter.info("matplotlib is not installed: no curves.png")
        self.reporter.info(f"wrote {self.out / ckpt.METRICS}, {ckpt.MODEL}, {ckpt.CHECKPOINT}"
                           f"{', ' + ckpt.PLOT if (self.out / ckpt.PLOT).exists() else ''}")


def train(config: TrainConfig, resume_path: str | None = None, reporter: Reporter | None = None,
          sync_every: int = 20) -> RunResult:
    """Run (or continue, from ``resume_path``) a training run; see :class:`TrainConfig`."""
    resume = None
    if resume_path is not None:
        resume = ckpt.load(resume_path)
        saved = TrainConfig(**{**resume["config"], "out": str(Path(resume_path).parent)})
        saved.epochs = config.epochs if config.epochs else saved.epochs
        saved.device, saved.compile = config.device, config.compile
        config = saved
    return Trainer(config, reporter, resume, sync_every).run()
