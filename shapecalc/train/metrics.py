"""Per-epoch figures, accumulated on the device and read back once per sync.

Reading a loss with ``.item()`` every step forces the host to wait for the GPU; summing
``loss·n`` and ``correct`` into device tensors and reading them every few dozen steps keeps
the GPU's queue full. Under DDP the three sums are all-reduced, so every rank reports the
global figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import torch

from shapecalc.train.config import is_cuda


@dataclass
class EpochMetrics:
    epoch: int
    loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    images_per_s: float
    seconds: float  # training time of the epoch (evaluation excluded)
    eval_seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Totals:
    """Device-side running sums of ``loss·n``, correct predictions and samples."""

    def __init__(self, device: torch.device, loss_sum: float = 0.0, correct: int = 0,
                 seen: int = 0) -> None:
        self.loss_sum = torch.tensor(loss_sum, dtype=torch.float64, device=device)
        self.correct = torch.tensor(correct, dtype=torch.int64, device=device)
        self.seen = seen

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = labels.shape[0]
        self.loss_sum += loss.detach().double() * n
        self.correct += (logits.detach().argmax(1) == labels).sum()
        self.seen += n

    def read(self, reduce=None) -> tuple[float, int, int]:
        """(loss_sum, correct, seen), summed over ranks when ``reduce`` is given."""
        packed = torch.stack([self.loss_sum, self.correct.double(),
                              torch.tensor(float(self.seen), dtype=torch.float64,
                                           device=self.loss_sum.device)])
        if reduce is not None:
            reduce(packed)
        loss_sum, correct, seen = packed.tolist()
        return loss_sum, int(round(correct)), int(round(seen))


def summary(history: list[EpochMetrics]) -> dict[str, Any]:
    """Final accuracy and steady-state speed (epoch 1 excluded when there are more: warm-up)."""
    if not history:
        return {}
    steady = history[1:] if len(history) > 1 else history
    images = sum(m.images_per_s * m.seconds for m in steady)
    seconds = sum(m.seconds for m in steady)
    return {
        "epochs": len(history),
        "final_loss": history[-1].loss,
        "final_train_acc": history[-1].train_acc,
        "final_test_acc": history[-1].test_acc,
        "best_test_acc": max(m.test_acc for m in history),
        "images_per_s": images / seconds if seconds else 0.0,
        "train_seconds": sum(m.seconds for m in history),
        "eval_seconds": sum(m.eval_seconds for m in history),
    }


def environment(device: torch.device, world: int) -> dict[str, Any]:
    from shapecalc import __version__

    info: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                            "shapecalc": __version__, "world_size": world}
    if is_cuda(device):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def metrics_text(data: dict[str, Any]) -> str:
    """metrics.json's text; written with :func:`shapecalc.core.fileio.write_text` (temp + rename)."""
    return json.dumps(data, indent=2) + "\n"
