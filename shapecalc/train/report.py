"""What the user sees: live bars on a terminal, plain lines otherwise, a table at the end.

Bars are redrawn only when the loop syncs (every few dozen steps), so drawing never forces a
GPU sync of its own. Without a terminal (CI, logs, ``| tee``) each epoch is one plain line.
rich is optional at this level so a bare machine with only torch can still train.
"""

from __future__ import annotations

import sys
from typing import Any

from .metrics import EpochMetrics


class Reporter:
    """Plain-line reporter; the base for the rich one and the silent one of non-main ranks."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def info(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def epoch_start(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        self.epochs = epochs

    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        pass

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

    def table(self, history: list[EpochMetrics]) -> None:
        pass


class RichReporter(Reporter):
    """One rich progress bar per epoch with live loss, accuracy and images/s."""

    def __init__(self, console: Any) -> None:
        super().__init__()
        self.console = console
        self.progress = None

    def info(self, line: str) -> None:
        self.console.print(line, highlight=False, markup=False)

    def epoch_start(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.epochs = epochs
        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=self.console, transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, completed=done, stats="")

    def step(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done,
                                 stats=f"loss {loss:.4f}  acc {acc:.4f}  {images_per_s:,.0f} img/s")

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
        return RichReporter(Console())
    return Reporter()
