"""How long the run will take, from its first batches, and what would make it shorter.

A 10-epoch AlexNet run at 224×224 takes under a minute on a data-centre GPU and most of a day
on a laptop CPU; ``--device auto`` picks whatever is there. So once the first batches are
measured the run's length is estimated and, when it is long, printed with concrete options.
The run is never refused: the user may well want the long run.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapecalc.train.report import duration

#: A run estimated above this many seconds gets the estimate and the faster options.
LONG_RUN_S = 20 * 60
SMALL_SIZE = 96


@dataclass(frozen=True)
class RunShape:
    """What the estimate needs to know about the run (plain values, no torch)."""

    device: str  # "cpu", "cuda", "mps"
    image_size: int
    epochs: int
    epochs_left: float  # including the rest of the current one
    train_images: int
    small_size_fits: bool  # the model accepts SMALL_SIZE×SMALL_SIZE
    saves: bool = True  # Ctrl-C writes a checkpoint


def run_seconds(seconds_per_batch: float, batches_per_epoch: int, epochs_left: float,
                eval_fraction: float = 0.1) -> float:
    """Seconds left: training batches plus about ``eval_fraction`` for each epoch's evaluation."""
    return seconds_per_batch * batches_per_epoch * epochs_left * (1 + eval_fraction)


def advice(seconds_left: float, seconds_per_epoch: float, run: RunShape,
           long_run_s: float = LONG_RUN_S) -> str | None:
    """One line with the estimate and the options that shorten it; ``None`` for a short run."""
    if seconds_left < long_run_s:
        return None
    options = []
    if run.image_size > SMALL_SIZE and run.small_size_fits:
        factor = (run.image_size / SMALL_SIZE) ** 2
        options.append(f"--image-size {SMALL_SIZE} (about {factor:.0f}x less compute)")
    if run.train_images >= 6000:
        options.append(f"--limit-train {run.train_images // 10} (10x fewer images)")
    if run.epochs > 2:
        options.append("--epochs 2")
    if run.device != "cuda":
        options.append("a CUDA GPU (--device cuda; the full 10-epoch d2l run is about a minute "
                       "on one H200)")
    faster = f"; faster: {', '.join(options)}" if options else ""
    return (f"estimated time: about {duration(seconds_left)} for this run on {run.device} "
            f"({duration(seconds_per_epoch)} an epoch, from the first batches); it keeps going"
            f"{' (Ctrl-C saves a checkpoint)' if run.saves else ''}{faster}")


__all__ = ["LONG_RUN_S", "RunShape", "advice", "run_seconds"]
