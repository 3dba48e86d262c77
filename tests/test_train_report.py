"""Progress inside an epoch, the long-run estimate and the curves' ticks.

The reporters and the estimate are plain Python (no torch); one tiny run checks that a real
epoch prints its 10% lines without a terminal and that the ETA comes from measured batches.
"""

from __future__ import annotations

import io

import pytest

from shapecalc.train.estimate import LONG_RUN_S, RunShape, advice, run_seconds
from shapecalc.train.metrics import EpochMetrics
from shapecalc.train.report import Progress, Reporter, duration


def test_durations_read_like_a_human_writes_them():
    assert [duration(s) for s in (0, 45.4, 432, 6600, 69000)] == \
        ["0 s", "45 s", "7 min 12 s", "1 h 50 min", "19 h 10 min"]
    assert duration(None) == "?"


def test_plain_reporter_prints_a_line_at_every_tenth():
    stream = io.StringIO()
    r = Reporter(stream)
    r.epoch_start(1, 3, 20)
    for done in range(1, 21):
        r.step(Progress(1, 3, done, 20, 1.5, 0.25, 1234.4, eta_epoch=(20 - done) * 0.5,
                        eta_run=(60 - done) * 0.5))
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == [f"{p}%" for p in range(10, 100, 10)]
    assert lines[0] == ("epoch 1/3   10%  batch 2/20  loss 1.5000  acc 0.2500  1,234 images/s  "
                        "ETA epoch 9 s, run 29 s")


def test_plain_reporter_skips_deciles_it_jumped_over_and_resumes_mid_epoch():
    stream = io.StringIO()
    r = Reporter(stream)
    r.epoch_start(2, 2, 10, done=4)  # resumed at batch 4: 10..40% are behind it
    for done in (5, 9, 10):
        r.step(Progress(2, 2, done, 10, 1.0, 0.5, 10.0))
    assert [line.split()[2] for line in stream.getvalue().splitlines()] == ["50%", "90%"]


SHAPE = RunShape("cpu", 224, 10, 10.0, 60000, small_size_fits=True)


def test_a_long_cpu_run_is_estimated_with_concrete_options():
    per_batch = 1.3  # seconds, AlexNet at 224 on 2 CPU cores
    left = run_seconds(per_batch, 468, 10.0)
    line = advice(left, per_batch * 468 * 1.1, SHAPE)
    assert line.startswith("estimated time: about 1 h 51 min for this run on cpu (11 min 09 s an epoch")
    for option in ("--image-size 96 (about 5x less compute)", "--limit-train 6000 (10x fewer images)",
                   "--epochs 2", "a CUDA GPU (--device cuda"):
        assert option in line
    assert "it keeps going (Ctrl-C saves a checkpoint)" in line


def test_short_runs_and_options_already_taken_are_not_suggested():
    assert advice(LONG_RUN_S - 1, 60, SHAPE) is None
    small = RunShape("cuda", 96, 2, 2.0, 2000, small_size_fits=True, saves=False)
    line = advice(LONG_RUN_S * 2, LONG_RUN_S, small)
    assert line is not None and "faster" not in line and "Ctrl-C" not in line
    no_small = RunShape("cpu", 224, 1, 1.0, 100, small_size_fits=False)
    assert "--image-size" not in advice(LONG_RUN_S * 2, LONG_RUN_S, no_small)


@pytest.mark.parametrize("epochs", [1, 2, 7, 30])
def test_curves_have_integer_epoch_ticks(epochs):
    pytest.importorskip("matplotlib")
    from shapecalc.train.plot import figure

    history = [EpochMetrics(e, 1 / e, 0.5, 1 / e, 0.5, 100.0, 1.0, 0.1) for e in range(1, epochs + 1)]
    fig = figure(history, "t")
    try:
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
            assert min(ticks) >= 1 and max(ticks) <= epochs
        if epochs == 1:
            assert [t for t in fig.axes[0].get_xticks()] == [1]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_a_run_without_a_terminal_prints_progress_lines():
    torch = pytest.importorskip("torch")
    from shapecalc.train.config import TrainConfig
    from shapecalc.train.loop import train

    stream = io.StringIO()
    train(TrainConfig(device="cpu", epochs=1, batch_size=16, image_size=65, limit_train=160,
                      limit_test=16, synthetic=True, threads=2), reporter=Reporter(stream), sync_every=1)
    lines = [line for line in stream.getvalue().splitlines() if "%  batch" in line]
    assert [line.split()[2] for line in lines] == [f"{p}%" for p in range(10, 100, 10)]
    assert all("images/s" in line for line in lines)
    assert all("ETA epoch" in line for line in lines[1:])  # from the 2nd measured batch on
    del torch
