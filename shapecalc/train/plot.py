"""Loss and accuracy curves; matplotlib is imported only here, with the Agg backend."""

from __future__ import annotations

from typing import Any

from shapecalc.train.metrics import EpochMetrics


def figure(history: list[EpochMetrics], title: str) -> Any:
    """The curves as a matplotlib figure (integer epoch ticks), or ``None`` without matplotlib.

    The caller saves it (through :mod:`shapecalc.core.fileio`) and closes it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, MaxNLocator
    except ImportError:
        return None
    epochs = [m.epoch for m in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [m.loss for m in history], "o-", label="train loss")
    ax_loss.plot(epochs, [m.test_loss for m in history], "s--", label="test loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [m.train_acc for m in history], "o-", label="train acc")
    ax_acc.plot(epochs, [m.test_acc for m in history], "s--", label="test acc")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        # Whole epochs only: a 1-epoch run shows "1", not 0.96 ... 1.04, and no epoch 0.
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if len(epochs) <= 12:
            ax.xaxis.set_major_locator(FixedLocator(epochs))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
