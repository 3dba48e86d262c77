"""The training run: data, model, shape check, epochs, checkpoints, resume, Ctrl-C.

The step loop reads nothing back from the device except at sync points (every ``sync_every``
steps or about once a second, whichever comes first), where it checks the recent losses for
NaN/inf (naming the step), measures images/s and the ETAs, and refreshes the progress.
Ctrl-C only sets a flag; the loop saves a checkpoint at the next step boundary, so the
checkpoint never holds a half-applied optimiser step and ``--resume`` continues bit-for-bit
(the run's CPU thread count is part of its settings and is restored, since the summation
order, hence the last bits, depends on it). A second Ctrl-C stops at once, except during a
checkpoint write, which is finished first; the previous checkpoint is never damaged.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from shapecalc.core.fileio import write_text
from shapecalc.models.model_source import ModelSource
from shapecalc.train import checkpoint as ckpt
from shapecalc.train import distributed
from shapecalc.train.config import TrainConfig
from shapecalc.train.errors import TrainError
from shapecalc.train.estimate import SMALL_SIZE, RunShape, advice, run_seconds
from shapecalc.train.metrics import EpochMetrics, Totals, environment, summary
from shapecalc.train.model import answers_ten_classes, from_stored, resolve, stored_model
from shapecalc.train.outputs import (metrics_document, missing_folders, remove_empty, save_model_file,
                                     write_plot)
from shapecalc.train.pipeline import epoch_order, eval_batches, num_batches, train_batches
from shapecalc.train.report import Progress, Reporter, make_reporter
from shapecalc.train.run_setup import PreparedRun, prepare_run

SYNC_SECONDS = 1.0  # at most about one device sync a second for progress and NaN checks


class Interrupted(Exception):
    """Ctrl-C was honoured; the message says where the checkpoint went."""

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


class Trainer:
    """One training run: :func:`~shapecalc.train.run_setup.prepare_run` prepares it and hands
    back a :class:`~shapecalc.train.run_setup.PreparedRun`; this class runs the epochs on it,
    evaluates, and saves (checkpoints, Ctrl-C, the final files)."""

    def __init__(self, config: TrainConfig, reporter: Reporter | None = None,
                 resume: dict[str, Any] | None = None, sync_every: int = 20,
                 source: ModelSource | None = None) -> None:
        self.config = config.validate()
        self.world = distributed.from_env()
        self.reporter = reporter or make_reporter(self.world.is_main)
        self.resume = resume
        self.sync_every = max(1, sync_every)
        self.source = source
        self.prepared: PreparedRun | None = None
        self.stop_requested = False
        self.saving = False
        self.writer = ckpt.BackgroundWriter()
        self.estimated = False
        self.saved_epoch: int | None = None

    def _state(self, epoch: int, batch: int, data_rng: torch.Tensor,
               partial: dict[str, Any] | None) -> dict[str, Any]:
        """A snapshot on the CPU: the background writer may save it while training goes on."""
        run = self.prepared
        return ckpt.to_cpu({
            "config": self.config.to_json(), "model": stored_model(run.source, self.config.model),
            "epoch": epoch, "batch": batch, "data_rng": data_rng, "rng": ckpt.rng_states(run.device),
            "weights": run.module.state_dict(), "optimizer": run.optimizer.state_dict(),
            "history": [m.to_json() for m in run.history], "partial": partial,
        })

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        previous = None
        threads_before = torch.get_num_threads()
        if (self.world.is_main and not self.world.distributed
                and threading.current_thread() is threading.main_thread()):
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        self.run_began = time.perf_counter()
        # Folders this run creates for --out; a run that fails before writing into them
        # takes them away again, rather than leaving an empty runs/<model>-<time>/ behind.
        made = missing_folders(self.config.out) if self.world.is_main else []
        finished = False
        try:
            self.prepared = prepare_run(self.config, self.world, self.reporter, self.resume, self.source)
            self.run_began = time.perf_counter()  # training wall time starts at epoch 1
            for epoch in range(self.prepared.start_epoch, self.config.epochs):
                self._epoch(epoch)
            self._finish()
            finished = True
        except torch.cuda.OutOfMemoryError:
            raise TrainError(f"CUDA out of memory at --batch-size {self.config.batch_size} and "
                             f"--image-size {self.config.image_size}; try a smaller --batch-size") from None
        except KeyboardInterrupt:  # the second Ctrl-C, outside a checkpoint write
            self.reporter.close()
            self._wait_writer()
            raise Interrupted(self._stopped_message()) from None
        finally:
            self.reporter.close()
            self._wait_writer(quiet=True)
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            torch.set_num_threads(threads_before)
            distributed.shutdown()
            if not finished:
                remove_empty(made)
        run = self.prepared
        return RunResult(run.history, summary(run.history), run.out, str(run.device), run.module)

    def _wait_writer(self, quiet: bool = False) -> None:
        try:
            self.writer.wait()
        except Exception:
            if not quiet:
                raise

    def _stopped_message(self) -> str:
        if self.prepared is None:
            return "stopped by a second Ctrl-C before training began; nothing is saved"
        if self.prepared.out is None:
            return "stopped by a second Ctrl-C; nothing is saved (--no-save)"
        if self.saved_epoch is None:
            return "stopped by a second Ctrl-C before the first checkpoint; nothing to resume"
        return (f"stopped by a second Ctrl-C; the last checkpoint (after epoch {self.saved_epoch}) "
                f"is kept: --resume {self.prepared.out / ckpt.CHECKPOINT}")

    def _on_sigint(self, signum, frame) -> None:
        if self.stop_requested and not self.saving:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        if self.stop_requested:
            self.reporter.info("second Ctrl-C: finishing the checkpoint being written, then stopping")
        self.stop_requested = True

    def _epoch(self, epoch: int) -> None:
        run = self.prepared
        cfg, world, dev = self.config, self.world, run.device
        rng_at_start = run.data_rng.get_state()
        order = epoch_order(len(run.train_data), run.data_rng, world.rank, world.size)
        local_batch = cfg.batch_size // world.size
        batches = num_batches(len(order), local_batch)
        start = run.start_batch if epoch == run.start_epoch else 0
        part = run.partial if epoch == run.start_epoch and run.partial else {}
        totals = Totals(dev, part.get("loss_sum", 0.0), part.get("correct", 0), part.get("seen", 0))
        elapsed_before = part.get("seconds", 0.0)
        step_losses = torch.zeros(batches, device=dev)
        run.model.train()
        self.reporter.epoch_start(epoch + 1, cfg.epochs, batches, start)
        autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=run.amp)
        checked = start
        began = last_sync = time.perf_counter()
        for i, (x, y) in enumerate(train_batches(run.train_data, order, local_batch, cfg.image_size,
                                                 run.channels_last, start), start=start):
            if self.stop_requested:
                self._interrupt(epoch, i, rng_at_start, totals, elapsed_before + time.perf_counter() - began)
            with autocast:
                logits = run.model(x)
                loss = F.cross_entropy(logits, y)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            step_losses[i] = loss.detach()
            totals.add(loss, logits, y)
            now = time.perf_counter()
            if (i + 1) % self.sync_every == 0 or i + 1 == batches or now - last_sync >= SYNC_SECONDS:
                self._check_finite(step_losses, checked, i + 1, epoch, batches)
                checked = i + 1
                loss_sum, correct, seen = totals.read()  # waits for the device: rates are real
                last_sync = time.perf_counter()
                self._progress(epoch, i + 1 - start, i + 1, batches, loss_sum, correct, seen,
                               seen - part.get("seen", 0), last_sync - began)
        run.policy.synchronize()
        seconds = elapsed_before + time.perf_counter() - began
        loss_sum, correct, seen = totals.read(distributed.all_reduce_sum)
        eval_began = time.perf_counter()
        test_loss, test_acc = self.evaluate()
        metrics = EpochMetrics(epoch + 1, loss_sum / seen, correct / seen, test_loss, test_acc,
                               seen / max(seconds, 1e-9), seconds, time.perf_counter() - eval_began)
        run.history.append(metrics)
        self.reporter.epoch_end(metrics)
        if run.out is not None and world.is_main:
            state = self._state(epoch + 1, 0, run.data_rng.get_state(), None)
            status = "running" if epoch + 1 < cfg.epochs else "complete"
            text = self._metrics_text(status)
            self.writer.submit(lambda: ckpt.save(run.out / ckpt.CHECKPOINT, state),
                               lambda: write_text(run.out / ckpt.METRICS, text, param="--out"),
                               lambda: setattr(self, "saved_epoch", epoch + 1))
        if self.stop_requested:  # Ctrl-C during the evaluation: this epoch's checkpoint is it
            self._interrupt(epoch + 1, 0, run.data_rng.get_state(), None, 0.0,
                            written=run.out is not None and world.is_main)

    def _progress(self, epoch: int, steps: int, done: int, batches: int, loss_sum: float,
                  correct: int, seen: int, seen_here: int, elapsed: float) -> None:
        """Rates and ETAs from device-synced sums; the long-run estimate once, early."""
        run = self.prepared
        world = self.world.size
        per_batch = elapsed / max(steps, 1)
        eval_share = 0.1 if not run.history else min(
            run.history[-1].eval_seconds / max(run.history[-1].seconds, 1e-9), 1.0)
        eta_epoch = per_batch * (batches - done)
        epochs_after = self.config.epochs - epoch - 1
        eta_run = eta_epoch + run_seconds(per_batch, batches, epochs_after, eval_share) \
            + per_batch * batches * eval_share
        p = Progress(epoch + 1, self.config.epochs, done, batches, loss_sum / max(seen, 1),
                     correct / max(seen, 1), seen_here * world / max(elapsed, 1e-9),
                     eta_epoch if steps >= 2 else None, eta_run if steps >= 2 else None)
        self.reporter.step(p)
        if not self.estimated and steps >= 3 and self.world.is_main:
            self.estimated = True
            shape = RunShape(run.device.type, self.config.image_size, self.config.epochs,
                             epochs_after + (batches - done) / batches, len(run.train_data),
                             answers_ten_classes(run.source, SMALL_SIZE), run.out is not None)
            line = advice(eta_run, per_batch * batches * (1 + eval_share), shape)
            if line is not None:
                self.reporter.info(line)

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
        run = self.prepared
        model = run.module.eval()
        dev, world = run.device, self.world
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        seen = 0
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=run.amp):
            for x, y, n in eval_batches(run.test_data, run.eval_batch, self.config.image_size,
                                        run.channels_last, world.rank, world.size, pad=run.pad_eval):
                logits, y = model(x)[:n], y[:n]
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
                seen += n
        packed = torch.stack([loss_sum, correct.double(),
                              torch.tensor(float(seen), dtype=torch.float64, device=dev)])
        loss_total, correct_total, n = distributed.all_reduce_sum(packed).tolist()
        model.train()
        return loss_total / max(n, 1), correct_total / max(n, 1)

    def _interrupt(self, epoch: int, batch: int, data_rng: torch.Tensor, totals: Totals | None,
                   seconds: float, written: bool = False) -> None:
        run = self.prepared
        partial = None
        if totals is not None:
            loss_sum, correct, seen = totals.read()
            partial = {"loss_sum": loss_sum, "correct": correct, "seen": seen, "seconds": seconds}
        if run.out is None:
            raise Interrupted(f"interrupted at epoch {epoch + 1}, batch {batch}; "
                              "nothing is saved (--no-save)")
        path = run.out / ckpt.CHECKPOINT
        self.saving = True  # a second Ctrl-C now waits for this write instead of tearing it
        try:
            self.writer.wait()
            if not written:
                ckpt.save(path, self._state(epoch, batch, data_rng, partial))
            write_text(run.out / ckpt.METRICS, self._metrics_text("interrupted"), param="--out")
        finally:
            self.saving = False
        raise Interrupted(f"interrupted at epoch {epoch + 1}, batch {batch}; checkpoint written, "
                          f"continue with --resume {path}")

    def _metrics_text(self, status: str) -> str:
        run = self.prepared
        return metrics_document(status, self.config.to_json(),
                                stored_model(run.source, self.config.model),
                                environment(run.device, self.world.size), run.amp,
                                run.channels_last, run.history,
                                time.perf_counter() - self.run_began)

    def _finish(self) -> None:
        run = self.prepared
        if self.world.is_main:
            self.reporter.table(run.history)
        if run.out is None or not self.world.is_main:
            if self.world.is_main:
                self.reporter.info("not saved (--no-save)")
            return
        self.saving = True
        try:
            self.writer.wait()
            save_model_file(run.out / ckpt.MODEL, stored_model(run.source, self.config.model),
                            self.config.image_size, run.module)
            title = f"{run.source.name} on Fashion-MNIST at {self.config.image_size}x{self.config.image_size}"
            plotted = write_plot(run.history, run.out / ckpt.PLOT, title)
        finally:
            self.saving = False
        if not plotted:
            from shapecalc.core.extras import install_command

            self.reporter.info(f"matplotlib is not installed: no curves.png ({install_command('train')})")
        names = [ckpt.METRICS, ckpt.MODEL, ckpt.CHECKPOINT] + ([ckpt.PLOT] if plotted else [])
        self.reporter.info(f"saved in {run.out}/: {', '.join(names)}")
        self.reporter.info(f"load it with shapecalc.load_trained({str(run.out)!r})")


def train(config: TrainConfig, resume_path: str | None = None, reporter: Reporter | None = None,
          sync_every: int = 20, model: Any = None,
          resume_state: dict[str, Any] | None = None) -> RunResult:
    """Run (or continue, from ``resume_path``) a training run; see :class:`TrainConfig`.

    ``model`` (a ModelSource, spec Block or nn.Module, or a MODEL string) overrides
    ``config.model`` and is resolved once. On resume the model is rebuilt from the spec stored
    in the checkpoint, never by resolving a name found in the file; only an explicit ``model``
    (``--model`` given again) is resolved, and its weights must fit the checkpoint's.
    ``resume_state`` is the checkpoint when the caller has already read it (``ckpt.load``).
    """
    resume = None
    source = resolve(model) if model is not None else None
    if resume_path is not None:
        resume = resume_state if resume_state is not None else ckpt.load(resume_path)
        where = f"--resume {resume_path}"
        saved = TrainConfig.from_json({**resume["config"], "out": str(Path(resume_path).parent)}, where)
        saved.epochs = config.epochs if config.epochs else saved.epochs
        saved.device, saved.compile = config.device, config.compile
        config = saved
        if source is None:
            source = from_stored(resume["model"], where)
    elif source is None:
        source = resolve(config.model)
    return Trainer(config, reporter, resume, sync_every, source).run()
