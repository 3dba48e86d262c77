"""What autograd keeps for a layer's backward, in types each layer answers with.

A layer's :meth:`~shapecalc.core.layers.base.Layer.saved` rule names the tensors its backward
needs: one of its inputs, its output, or a tensor it makes (a max-pool's int64 indices, a batch
norm's statistics, a dropout mask). Naming inputs and outputs instead of sizing them lets the
memory account (:mod:`shapecalc.core.memory`) count a tensor kept by two layers once, as
autograd does: it holds storages, not copies.

The rules are what ``torch.autograd.graph.saved_tensors_hooks`` sees on torch >= 2.4
(``tests/test_memory_torch.py`` compares them layer by layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

Shape = tuple[int, ...]


class Kept(Enum):
    """Which tensor a saved entry is."""

    INPUT = "input"    # the layer's input ``index`` (its storage: a view of it is the same)
    OUTPUT = "output"  # the layer's output
    NEW = "new"        # a tensor the layer makes and keeps: ``shape`` of ``dtype``


@dataclass(frozen=True, slots=True)
class Saved:
    kept: Kept
    index: int = 0
    shape: Shape = ()
    #: Element type of a NEW tensor; ``None``: the activation dtype.
    dtype: str | None = None


@dataclass(frozen=True, slots=True)
class Backward:
    """What decides a layer's saved tensors besides its shapes.

    ``needs_grad``: per input, whether autograd wants its gradient (the image does not; every
    value computed from a trainable weight does). ``weights_grad``: the layer has trainable
    weights. ``training``: module mode (dropout masks, batch statistics). ``cuda``: the device
    is a GPU, where dropout keeps a bool mask (``native_dropout``) and norms keep float32
    statistics; on a CPU both are in the activation dtype, ``dtype``.
    """

    needs_grad: tuple[bool, ...]
    weights_grad: bool = False
    training: bool = True
    cuda: bool = False
    dtype: str = "float32"  # the activations' element type
    #: Per input, the first input holding the same value (self-attention's ``q = k = v``).
    same_as: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """Whether autograd records this layer at all."""
        return self.weights_grad or any(self.needs_grad)

    def input_grad(self, index: int = 0) -> bool:
        return index < len(self.needs_grad) and self.needs_grad[index]

    @property
    def stats_dtype(self) -> str | None:
        return "float32" if self.cuda else None


INPUT = Saved(Kept.INPUT, 0)
OUTPUT = Saved(Kept.OUTPUT)


def new(shape: Shape, dtype: str | None = None) -> Saved:
    return Saved(Kept.NEW, 0, tuple(shape), dtype)


def keeps_input_if_active(grad: Backward) -> tuple[Saved, ...]:
    """The commonest rule (convolutions, most activations, pooling): the input, once recorded."""
    return (INPUT,) if grad.active else ()


def keeps_output_if_active(grad: Backward) -> tuple[Saved, ...]:
    """ReLU, sigmoid, tanh, softmax: the backward is a function of the output."""
    return (OUTPUT,) if grad.active else ()


__all__ = ["INPUT", "OUTPUT", "Backward", "Kept", "Saved", "keeps_input_if_active",
           "keeps_output_if_active", "new"]
