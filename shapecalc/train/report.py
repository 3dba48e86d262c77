"""What the user sees: a live bar on a terminal, a plain line every 10% otherwise, a table at the end.

The loop hands over a :class:`Progress` only when it has read its sums back from the device
(about once a second, or every ``sync_every`` steps), so rates and ETAs are measured on the
device and drawing never forces a GPU sync of its own. Without a terminal (CI, logs,
``| tee``) each epoch prints a line at every 10% and one at its end. rich is optional at this
level so a bare machine with only torch can still train.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from shapecalc.core.safetext import printable
from shapecalc.train.metrics import EpochMetrics


@dataclass(frozen=True)
class Progress:
    """Where an epoch stands at a sync point; ETAs in seconds (``None`` until measurable)."""

    epoch: int
    epochs: int
    done: int  # batches finished in this epoch
    batches: int
    loss: float
    acc: float
    images_per_s: float
    eta_epoch: float | None = None
    eta_run: float | None = None


def duration(seconds: float | None) -> str:
    """``45 s``, ``7 min 12 s``, ``1 h 50 min``: as precise as a human reads it."""
    if seconds is None or seconds != seconds:
        return "?"
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def eta_text(p: Progress) -> str:
    if p.eta_epoch is None:
        return ""
    run = f", run {duration(p.eta_run)}" if p.eta_run is not None and p.epochs > p.epoch else ""
    return f"ETA epoch {duration(p.eta_epoch)}{run}"


class Reporter:
    """Plain-line reporter; the base for the rich one and the silent one of non-main ranks."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.epochs = 0
        self._decile = 0

    def info(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def epoch_start(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        self.epochs = epochs
        self._decile = (10 * done) // max(batches, 1)

    def step(self, p: Progress) -> None:
        """A line each time the epoch passes another 10% (the end has its own line)."""
        decile = (10 * p.done) // max(p.batches, 1)
        if decile > self._decile and p.done < p.batches:
            self._decile = decile
            eta = eta_text(p)
            self.info(f"epoch {p.epoch}/{p.epochs}  {10 * decile:>3d}%  batch {p.done}/{p.batches}  "
                      f"loss {p.loss:.4f}  acc {p.acc:.4f}  {p.images_per_s:,.0f} images/s"
                      + (f"  {eta}" if eta else ""))

    def epoch_end(self, m: EpochMetrics) -> None:
        self.info(
            f"epoch {m.epoch}/{self.epochs}  loss {m.loss:.4f}  train acc {m.train_acc:.4f}  "
            f"test acc {m.test_acc:.4f}  {m.images_per_s:,.0f} images/s  {m.seconds:.1f} s"
        )

    def close(self) -> None:
        pass

    def table(self, history: list[EpochMetrics]) -> None:
        head = f"{'epoch':>5}  {'loss':>7}  {'train acc':>9}  {'test acc':>8}  {'images/s':>9}  {'time':>7}"
        self.info(head)
        for m in history:
            self.info(f"{m.epoch:>5}  {m.loss:>7.4f}  {m.train_acc:>9.4f}  {m.test_acc:>8.4f}  "
                      f"{m.images_per_s:>9,.0f}  {m.seconds:>6.1f}s")


class Silent(Reporter):
    def info(self, line: str) -> None:
        pass

    def step(self, p: Progress) -> None:
        pass

    def table(self, history: list[EpochMetrics]) -> None:
        pass


class RichReporter(Reporter):
    """One rich progress bar per epoch: batches, loss, accuracy, images/s, ETA (epoch and run)."""

    def __init__(self, console: Any) -> None:
        super().__init__()
        self.console = console
        self.progress = None

    def info(self, line: str) -> None:
        self.console.print(printable(line), highlight=False, markup=False)

    def epoch_start(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self.epochs = epochs
        self.progress = Bar(
            TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("batches  {task.fields[stats]}"), TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console, transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, completed=done, stats="", eta="")

    def step(self, p: Progress) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task, completed=p.done, eta=eta_text(p),
                stats=f"loss {p.loss:.4f}  acc {p.acc:.4f}  {p.images_per_s:,.0f} images/s")

    def epoch_end(self, m: EpochMetrics) -> None:
        self.close()
        super().epoch_end(m)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def table(self, history: list[EpochMetrics]) -> None:
        from rich.table import Table

        table = Table(title="training")
        for name in ("epoch", "loss", "train acc", "test acc", "images/s", "time"):
            table.add_column(name, justify="right")
        for m in history:
            table.add_row(str(m.epoch), f"{m.loss:.4f}", f"{m.train_acc:.4f}", f"{m.test_acc:.4f}",
                          f"{m.images_per_s:,.0f}", f"{m.seconds:.1f} s")
        self.console.print(table)


def make_reporter(is_main: bool = True) -> Reporter:
    """Rich bars on a terminal when rich is installed; plain lines otherwise."""
    if not is_main:
        return Silent()
    if sys.stdout.isatty():
        try:
            from rich.console import Console
        except ImportError:
            return Reporter()
        from shapecalc.core.safetext import unfiltered

        return RichReporter(Console(file=unfiltered(sys.stdout)))
    return Reporter()
