"""Loss and accuracy curves as a PNG; matplotlib is imported only here, with the Agg backend."""

from __future__ import annotations

from pathlib import Path

from .metrics import EpochMetrics


def plot_curves(history: list[EpochMetrics], path: Path, title: str) -> bool:
    """Write the curves; ``False`` (nothing written) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
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
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
