"""How a training step runs, for :mod:`shapecalc.core.memory`: the element type, autocast,
the optimizer, the module mode, the device kind, and the assumptions every figure of a step
then rests on (stated with the figures). Checked here, so that errors name the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from shapecalc.core.errors import ArgumentError


class Optimizer(str, Enum):
    """The optimizers whose state is counted: how many copies of each trainable parameter they
    keep, and the bytes of the per-tensor step count (Adam's ``state['step']``, a float32
    scalar tensor)."""

    SGD = "sgd"
    MOMENTUM = "momentum"
    ADAM = "adam"
    ADAMW = "adamw"

    @property
    def copies(self) -> int:
        return {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[self.value]

    @property
    def step_bytes(self) -> int:
        return 4 if self in (Optimizer.ADAM, Optimizer.ADAMW) else 0


#: Element types a training step can run in (``--dtype``).
TRAIN_DTYPES = ("float32", "bfloat16", "float16")
#: A bound far beyond any real batch that keeps every figure a plain, fast integer.
MAX_BATCH = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Settings:
    """How the step runs. ``dtype``: parameters and activations (``model.to(dtype)``);
    ``amp``: bfloat16 autocast over float32 weights; ``training``: module mode."""

    dtype: str = "float32"
    amp: bool = False
    optimizer: Optimizer = Optimizer.ADAM
    training: bool = True
    cuda: bool = False

    @property
    def param_dtype(self) -> str:
        return "float32" if self.amp else self.dtype


def settings(dtype: str = "float32", amp: bool = False, optimizer: str | Optimizer = "adam",
             mode: str = "train", cuda: bool = False) -> Settings:
    """Checked :class:`Settings`; errors name the parameter."""
    if dtype not in TRAIN_DTYPES:
        raise ArgumentError("dtype", f"expected one of {', '.join(TRAIN_DTYPES)}, got {dtype!r}")
    if amp and dtype != "float32":
        raise ArgumentError("amp", f"autocast keeps float32 weights; it cannot be combined with "
                                   f"dtype {dtype!r}")
    try:
        opt = Optimizer(optimizer)
    except ValueError:
        raise ArgumentError("optimizer", f"expected one of {', '.join(o.value for o in Optimizer)}"
                                         f", got {optimizer!r}") from None
    if mode not in ("train", "eval"):
        raise ArgumentError("mode", f"expected 'train' or 'eval', got {mode!r}")
    return Settings(dtype, bool(amp), opt, mode == "train", bool(cuda))


def check_batch(batch: Any) -> int | None:
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise ArgumentError("batch", f"expected a positive integer, got {batch!r}")
    if not 1 <= batch <= MAX_BATCH:
        raise ArgumentError("batch", f"expected 1 to {MAX_BATCH:,}, got {batch:,}")
    return batch


def step_transient(setup: Settings, total_grads: int, largest: int) -> int:
    """Adam's update makes ``sqrt(exp_avg_sq)`` and its quotient: on a GPU (foreach kernels)
    for every parameter at once, on a CPU (one tensor at a time) two of the largest tensor.
    SGD, with or without momentum, updates in place."""
    if setup.optimizer.copies < 2:
        return 0
    return total_grads if setup.cuda else 2 * largest


def assumptions(setup: Settings) -> tuple[str, ...]:
    where = "GPU" if setup.cuda else "CPU"
    lines = [
        "one step of zero_grad(set_to_none=True), forward, backward, optimizer.step(), after "
        "the first step (optimizer state already allocated)",
        "the input batch stays alive through the step; labels and the loss are not counted",
        f"saved tensors as autograd keeps them on a {where} (dropout masks and norm "
        "statistics differ by device), each storage counted once",
        "kernel workspaces (cuDNN, oneDNN) and the allocator's caching are not counted",
    ]
    if setup.amp:
        lines.append("bfloat16 autocast: matrix products in bfloat16 and each keeps a bfloat16 "
                     "copy of its weight; float32 master weights, gradients and optimizer state")
    if setup.optimizer.copies == 2:
        lines.append(f"{setup.optimizer.value}: two state tensors per parameter and a float32 step "
                     f"count per parameter tensor; the update's temporaries are "
                     f"{'all parameters at once (foreach)' if setup.cuda else 'two of the largest layer'}")
    return tuple(lines)


__all__ = ["MAX_BATCH", "Optimizer", "Settings", "TRAIN_DTYPES", "assumptions", "check_batch",
           "settings", "step_transient"]
